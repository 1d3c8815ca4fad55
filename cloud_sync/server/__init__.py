"""Central sync server: receives the sites' streams and serves the office."""
