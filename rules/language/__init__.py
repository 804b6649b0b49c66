"""The definition language: YAML sources, expression syntax, definitions model, validation."""
