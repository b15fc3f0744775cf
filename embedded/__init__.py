"""The embedded development stack behind `internflow up`, `make demo` and the tests."""
