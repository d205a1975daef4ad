"""The model: the layer spec and the nn.Module built from it, checkpoints (read, write, state_dict
inference) and user model classes from Python files."""
