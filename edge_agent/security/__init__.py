"""Security primitives: password hashing, API keys and signed tokens (no I/O)."""
