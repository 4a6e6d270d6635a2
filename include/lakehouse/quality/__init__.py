"""Data quality: GX expectation suites on registered tables (expectations.py) and the smoke pipeline
that proves the stack end to end (smoke.py).
Never fixes data: it validates, quarantines copies and reports."""
