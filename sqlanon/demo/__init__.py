"""`sqlanon demo`: the retail example, end to end, on an embedded DuckDB."""
