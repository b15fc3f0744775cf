"""The internflow vocabulary: plans, submissions, status and activity messages (pure pydantic)."""
