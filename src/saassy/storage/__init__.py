"""Artifact storage: a local directory now, S3-compatible next, behind one interface."""
