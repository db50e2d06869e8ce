"""The report model (JSON is the source of truth) and its Markdown rendering."""
