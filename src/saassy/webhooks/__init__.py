"""Signed outgoing webhooks (Standard Webhooks): endpoints, an outbox of messages, a relay."""
