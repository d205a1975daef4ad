"""What a run leaves and what it is used for: evaluation on a split, prediction on new tables, the
runs (log folders) read back with TensorBoard's reader."""
