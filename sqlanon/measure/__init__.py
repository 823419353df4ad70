"""Measurement over a live warehouse: re-identification risk and k, l, t (risk.py),
utility (utility.py), the generalization lattice search (tune.py) and schema drift (drift.py)."""
