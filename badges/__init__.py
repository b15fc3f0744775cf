"""Open Badges 3.0 as a plain library: build, sign, verify, bake and revoke credentials."""
