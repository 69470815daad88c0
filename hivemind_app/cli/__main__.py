from hivemind_app.cli import main

main()
