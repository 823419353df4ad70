"""Differentially private releases: the mechanism's parameters (mechanism.py), computed at
compile time, and the release plan lowered to SQL (lower.py)."""
