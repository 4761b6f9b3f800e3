"""Placeholder: filled in by its own module's owner."""
