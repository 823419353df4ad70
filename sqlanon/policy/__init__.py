"""Policy files → validated PolicySpecs (load.py is the entry point)."""
