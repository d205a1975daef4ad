"""Training: the engine and its events, callbacks (TensorBoard, checkpoints, early stopping), resume,
autosave, divergence and health checks, the learning-rate finder, task metrics."""
