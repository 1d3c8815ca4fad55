"""Recognition clients: adapters to face recognition services, and resilience."""
