"""The aiohttp hub: REST and WebSocket edge. Never imports the database layer."""
