"""Clients: adapters to the outside (storage, recognition, events, probes)."""
