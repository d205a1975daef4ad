"""A trained model leaving nnstudio: ONNX, TorchScript and plain state_dict files, and the course-style
Python script of a run config (the code view)."""
