"""Evaluation: input events, per-customer state, compiled conditions, membership changes."""
