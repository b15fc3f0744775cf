"""Open Badges 3.0 as a plain library: build, canonicalize, sign, verify and bake credentials."""
