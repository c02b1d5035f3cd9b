"""ganserve.training: architectures, losses, data, the training loop, checkpoints and metrics."""
