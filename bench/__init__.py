"""Benchmarks: `make bench` prints one JSON object a line, {"metric": ..., "value": ..., "unit": ...}."""
