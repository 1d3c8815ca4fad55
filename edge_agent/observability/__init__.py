"""Observability: logging and metrics, importable by every layer."""
