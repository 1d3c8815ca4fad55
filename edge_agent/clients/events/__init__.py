"""Event clients: the sinks that carry outbox events to other systems."""
