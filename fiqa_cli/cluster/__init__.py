"""Scoring spread over a Ray cluster (optional extra `ray`)."""
