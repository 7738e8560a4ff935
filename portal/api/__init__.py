"""The JSON API (/api/v1): thin views over the domain services."""
