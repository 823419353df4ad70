"""sqlanon: a SQL-native anonymization compiler.

A YAML policy is loaded and validated, planned into immutable dialect-free data, lowered into
SQL for one warehouse dialect from the named primitives in dialects/, and emitted as files.
"""

__version__ = "0.1.0"
