"""Typed configuration: the model, its validation, and its atomic persistence."""
