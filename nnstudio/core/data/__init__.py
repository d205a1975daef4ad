"""Tables in, tensors out: reading files (`read`), column typing (`columns`), preprocessing fitted on the
training rows (`preprocess`), splits and tensors (`split`), and `prepare`, which joins them.

Every public name is importable from here, as it was when this was one module.
"""

from nnstudio.core.data._common import (MAX_CATEGORIES, MAX_CLASSES, MISSING_POLICIES, NA_SPELLINGS, TABLE_SUFFIXES,
                                        TASKS)
from nnstudio.core.data.columns import (ColumnInfo, _label_codes, _label_key, _label_keys, _missing_count,
                                        _natural_key, _text_kind, column_kind, default_target, describe_columns,
                                        feature_columns, infer_task, resolve_task, unusable_features)
from nnstudio.core.data.prepare import load_dataset, model_io_size, prepare, summarize
from nnstudio.core.data.preprocess import Preprocessor
from nnstudio.core.data.read import FLOAT32_MAX_SCALE, _first_line, _sniff_delimiter, _sniff_encoding, read_table
from nnstudio.core.data.table import as_table
from nnstudio.core.data.split import (LazyTableDataset, PreparedData, TensorSplit, iter_batches, split_indices,
                                      validate_split)

__all__ = [
    "as_table",
    "MAX_CATEGORIES", "MAX_CLASSES", "MISSING_POLICIES", "NA_SPELLINGS", "TABLE_SUFFIXES", "TASKS", "FLOAT32_MAX_SCALE",
    "ColumnInfo", "LazyTableDataset", "PreparedData", "Preprocessor", "TensorSplit", "column_kind", "default_target",
    "describe_columns", "feature_columns", "infer_task", "unusable_features", "iter_batches", "load_dataset", "model_io_size", "prepare", "read_table",
    "resolve_task", "split_indices", "summarize", "validate_split",
    "_first_line", "_sniff_delimiter", "_sniff_encoding", "_label_codes", "_label_key", "_label_keys", "_missing_count", "_natural_key", "_text_kind",
]
