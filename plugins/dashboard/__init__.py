"""The community dashboard: the public list of communities, and each community's page — the bulb, activity,
newcomer conversion, moves between levels and every plugin's panels — drawn on the server."""
