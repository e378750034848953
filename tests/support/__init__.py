"""Helpers shared by the tests (and a few benches): importable as `support.x` (pytest's pythonpath is tests/)."""
