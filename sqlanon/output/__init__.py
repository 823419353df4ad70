"""Output: SQL files and the manifest (emit.py, manifest.py, files.py), the dbt project
(dbt.py), OpenLineage (openlineage.py), and the atomic writer and `--check` (write.py)."""
