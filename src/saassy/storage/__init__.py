"""Artifact storage behind one interface: a local directory, or an S3-compatible bucket."""
