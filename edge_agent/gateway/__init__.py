"""Gateway: the middlewares every request passes before a controller.

The chain itself is assembled in :mod:`edge_agent.gateway.chain`.
"""
