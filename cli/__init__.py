"""The `internflow` command line."""
