"""User-facing errors: each message is one sentence that names the file, row, column or layer at fault."""


class NNStudioError(Exception):
    """Base of every error nnstudio shows to a user as-is (no traceback)."""


class DataError(NNStudioError):
    pass


class ModelSpecError(NNStudioError):
    pass


class ConfigError(NNStudioError):
    pass


class CheckpointError(NNStudioError):
    pass


class DatasetNotCheckpoint(CheckpointError):
    """A `.pt` that holds tensors X and y: open it as a dataset instead."""


class TrainingError(NNStudioError):
    pass


class TrainingDiverged(TrainingError):
    pass
