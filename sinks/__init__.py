"""Destinations that turn membership changes into effects."""
