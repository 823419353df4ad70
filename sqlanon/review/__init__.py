"""Review tools: the privacy-impact diff (diff.py), explain, the data sheet and the
conformance vectors run on an engine (conformance.py)."""
