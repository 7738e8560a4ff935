"""Running the portal: readiness, metrics, and the back office's page of failed background work."""
