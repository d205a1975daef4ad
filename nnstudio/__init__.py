"""nnstudio: a desktop studio for building, training, inspecting and saving PyTorch networks."""

__version__ = "0.1.0"
