"""Sharing sale proceeds between the city and the county-level unit where a project lies."""
