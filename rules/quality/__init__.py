"""Segment quality: static checks of definitions and measures of replayed memberships (`segmenter lint`)."""
