"""The services behind the `Hive` facade: one object per concern, built once by `hivemind_app/wiring.py`.

A service may use the store, the hub and the model libraries; it never imports a front end (textual, mcp,
starlette). Front ends reach services only through `Hive`.
"""
