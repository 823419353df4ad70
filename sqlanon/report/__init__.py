"""Renderers: terminal, markdown, JSON and HTML views of what measure/ and review/
compute. Nothing here computes a figure."""
