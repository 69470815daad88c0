"""The Textual TUI. A front end: it reaches the store only through the `Hive` facade."""
