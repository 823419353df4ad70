"""Running generated SQL on real engines: used by `sqlanon demo`/`apply`, key loading and
the test suite. One module per engine."""
