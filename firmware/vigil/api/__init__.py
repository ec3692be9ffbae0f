"""The aiohttp application: ISAPI resources, authentication, the listeners."""
