"""HTTP side of the central server: aiohttp app, middlewares and controllers."""
