"""Observability: logging, metrics, tracing and systemd notices, for every layer."""
