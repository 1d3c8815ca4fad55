"""Sync of attendance, audit and events between sites and the central office."""

__version__ = "0.1.0"
