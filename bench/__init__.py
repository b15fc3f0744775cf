"""Benchmarks, runnable with python -m bench.<name>."""
