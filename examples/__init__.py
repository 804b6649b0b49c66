"""Example segment definitions and a deterministic synthetic shop that feeds them."""
