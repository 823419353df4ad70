"""SQL lowering: template shapes checked by sqlglot (shapes.py), the dialect contract and
dialects/ templates (dialect.py), views (views.py) and DP releases (releases.py)."""
