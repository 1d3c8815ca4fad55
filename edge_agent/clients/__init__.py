"""Clients: adapters to the outside (storage, recognition)."""
