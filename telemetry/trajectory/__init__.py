"""Trajectory steps: cleaning, segmentation, smoothing, metrics, behavioural states."""
