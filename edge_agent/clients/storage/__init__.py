"""Storage client: the SQLite database, its migrations and its repositories."""

from edge_agent.clients.storage.database import Database, StorageError

__all__ = ["Database", "StorageError"]
