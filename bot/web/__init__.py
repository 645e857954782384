"""The web part, served by aiohttp in the bot's own process."""
