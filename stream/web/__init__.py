"""The worker's HTTP API (Faust web): /customers, /segments, /health, /metrics."""
