"""Limits and names every part of `nnstudio.core.data` shares."""

TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".parquet", ".pq", ".npy", ".npz", ".pt", ".pth"}
TASKS = ("regression", "binary", "multiclass")
MAX_CATEGORIES = 50  # one-hot cap per categorical feature
MAX_CLASSES = 200
MISSING_POLICIES = ("impute", "drop")
#: Cell spellings read as a missing value in every text cell of every file format (compared stripped and
#: lower-cased); an empty cell is missing too.
NA_SPELLINGS = ("", "na", "n/a", "null", "nan", "none", "?")
