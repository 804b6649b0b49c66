"""Prometheus metrics of the streaming worker (names and labels: README, "Metrics")."""
