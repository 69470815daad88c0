from hivemind_app.entry import main

main()
