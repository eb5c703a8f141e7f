"""Inference backends. Each module imports its runtime lazily; `base` holds what they share."""
