"""Evaluation protocols (gdsr benchmark, metric) for depth SR methods."""
