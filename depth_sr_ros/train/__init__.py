"""Training: datasets, degradations, synthetic scenes, losses and the training loop."""
