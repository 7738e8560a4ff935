"""The staff back office (/staff): thin views over the domain services; permissions from
``portal.access``."""
