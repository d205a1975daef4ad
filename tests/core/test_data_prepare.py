"""prepare() against a straightforward reference: fit on the training rows, transform each split, compare.

The reference is what prepare() did before it wrote one matrix directly: drop unusable rows, split (stratified
by the label strings), `Preprocessor.fit` on `df.iloc[train]`, `transform_features`/`transform_target` per split.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pandas as pd
import pyarrow.csv as pacsv
import pytest
import torch

from corehelpers import mixed_frame
from nnstudio.core.data import (Preprocessor, _label_keys, prepare, read_table, resolve_task, split_indices)
from nnstudio.core.errors import DataError


def reference(df: pd.DataFrame, target: str, task: str = "auto", split=(0.7, 0.15, 0.15), seed: int = 0,
              missing: str = "impute"):
    if isinstance(df, pl.DataFrame):
        df = df.to_pandas()
    task = resolve_task(df, target, task)
    features = [c for c in df.columns if c != target]
    keep = df[target].notna()
    if task == "regression":
        keep &= np.isfinite(pd.to_numeric(df[target], errors="coerce").astype("float64"))
    if missing == "drop":
        keep &= df[features].notna().all(axis=1)
    df = df.loc[keep].reset_index(drop=True)
    strat = None
    if task != "regression":
        strat = _label_keys(df[target]).astype(str)
        if pd.Series(strat).value_counts().min() < 2:
            strat = None
    parts = split_indices(len(df), split, seed, strat)
    pre = Preprocessor.fit(df.iloc[parts[0]], target, task, features, missing)
    out = []
    for idx in parts:
        part = df.iloc[idx]
        out.append((pre.transform_features(part), pre.transform_target(part[target])))
    return pre, out


def assert_same(data, pre, parts, rel: float = 1e-9):
    """`rel`: how close fitted statistics must be (1e-9: the same table; ~1e-6: a float32 reading of it)."""
    assert data.preprocessor.task == pre.task
    assert data.preprocessor.classes == pre.classes
    assert data.preprocessor.target_mean == pytest.approx(pre.target_mean, rel=rel, abs=rel)
    assert data.preprocessor.target_std == pytest.approx(pre.target_std, rel=rel)
    assert [f["name"] for f in data.preprocessor.features] == [f["name"] for f in pre.features]
    for got, want in zip(data.preprocessor.features, pre.features):
        assert got.keys() == want.keys() and got["kind"] == want["kind"]
        if "mean" in want:
            assert got["mean"] == pytest.approx(want["mean"], rel=rel, abs=rel * want["std"])
            assert got["std"] == pytest.approx(want["std"], rel=rel)
        else:
            assert got["categories"] == want["categories"]
    for split, (X, y) in zip((data.train, data.val, data.test), parts):
        assert split.X.dtype == torch.float32 and split.X.shape == X.shape
        np.testing.assert_allclose(split.X.numpy(), X, rtol=2e-6, atol=2e-6)
        if pre.task == "multiclass":
            assert split.y.dtype == torch.int64
            np.testing.assert_array_equal(split.y.numpy(), y)
        else:
            assert split.y.dtype == torch.float32
            np.testing.assert_allclose(split.y.numpy(), y.astype(np.float32), rtol=2e-6, atol=2e-6)


def gappy_frame(n: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "f64": rng.normal(3, 2, n),
        "f32": rng.normal(-1, 5, n).astype(np.float32),
        "count": rng.integers(0, 40, n),
        "flag01": rng.integers(0, 2, n),
        "yes": rng.choice(["true", "False"], n),
        "bool": rng.choice([True, False], n),
        "colour": rng.choice(["red", "green", "blue"], n),
        "cat": pd.Categorical(rng.choice(["u", "v", "w"], n), categories=["w", "v", "u", "unused"]),
        "label": rng.choice(["cat", "dog", "fish", "10", "9"], n),
    })
    df.loc[rng.choice(n, 25, replace=False), "f64"] = np.nan
    df.loc[rng.choice(n, 20, replace=False), "f32"] = np.nan
    df.loc[rng.choice(n, 3, replace=False), "f32"] = np.inf
    df.loc[rng.choice(n, 15, replace=False), "colour"] = None
    df.loc[rng.choice(n, 10, replace=False), "label"] = None
    return df


@pytest.mark.parametrize("missing", ["impute", "drop"])
@pytest.mark.parametrize("seed", [0, 3])
def test_multiclass_with_gaps_and_every_kind(missing, seed):
    df = gappy_frame()
    data = prepare(df, target="label", seed=seed, missing=missing, split=(0.6, 0.25, 0.15))
    assert_same(data, *reference(df, "label", seed=seed, missing=missing, split=(0.6, 0.25, 0.15)))
    assert data.preprocessor.classes == ["9", "10", "cat", "dog", "fish"]
    kinds = {f["name"]: f["kind"] for f in data.preprocessor.features}
    assert kinds == {"f64": "numeric", "f32": "numeric", "count": "numeric", "flag01": "boolean", "yes": "boolean",
                     "bool": "boolean", "colour": "categorical", "cat": "categorical"}


@pytest.mark.parametrize("target, task", [("f64", "regression"), ("count", "auto"), ("flag01", "auto"),
                                          ("yes", "auto"), ("bool", "auto"), ("colour", "auto"), ("cat", "auto")])
def test_every_target_kind(target, task):
    df = gappy_frame().drop(columns=["label"])
    data = prepare(df, target=target, task=task)
    assert_same(data, *reference(df, target, task))


def test_regression_on_float32_and_integer_targets():
    df = gappy_frame().drop(columns=["label"])
    for target in ("f32", "count"):
        data = prepare(df, target=target, task="regression")
        assert_same(data, *reference(df, target, "regression"))


def test_integer_class_labels_and_a_singleton_class_fall_back_to_a_plain_split():
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"x": rng.normal(size=300), "y": rng.choice([2, 7, 11], 300)})
    df.loc[5, "y"] = 99  # one row of its own class: no stratification
    data = prepare(df, target="y", task="multiclass")
    assert_same(data, *reference(df, "y", "multiclass"))
    assert data.report["class_counts"] == {"11": int((df.y == 11).sum()), "2": int((df.y == 2).sum()),
                                           "7": int((df.y == 7).sum()), "99": 1}


def test_splits_are_views_of_one_matrix_in_table_order():
    df = mixed_frame(200)
    data = prepare(df, target="label")
    base = data.train.X.untyped_storage().data_ptr()
    assert data.val.X.untyped_storage().data_ptr() == base == data.test.X.untyped_storage().data_ptr()
    assert data.train.X.is_contiguous() and data.val.X.is_contiguous() and data.test.X.is_contiguous()
    assert len(data.train) + len(data.val) + len(data.test) == 200


def test_csv_read_then_prepare_matches_the_reference(tmp_path):
    df = gappy_frame(3000).drop(columns=["cat"])
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    table = read_table(path)
    assert table["f32"].dtype == pl.Float32  # spread large against magnitude: float32 keeps it
    data = prepare(table, target="label")
    assert_same(data, *reference(table, "label"))
    # and pandas' float64 reading of the same file (empty cells missing) gives the same tensors, float32 aside
    assert_same(data, *reference(pd.read_csv(path), "label"), rel=1e-6)


def test_with_a_fitted_preprocessor_nothing_is_refitted():
    df = gappy_frame()
    fitted = prepare(df, target="label").preprocessor
    other = gappy_frame(seed=9)
    data = prepare(other, preprocessor=Preprocessor.from_dict(fitted.to_dict()))
    assert data.preprocessor.to_dict() == fitted.to_dict()
    keep = other["label"].notna()
    used = other.loc[keep].reset_index(drop=True)
    strat = _label_keys(used["label"]).astype(str)
    for split, idx in zip((data.train, data.val, data.test), split_indices(len(used), (0.7, 0.15, 0.15), 0, strat)):
        np.testing.assert_allclose(split.X.numpy(), fitted.transform_features(used.iloc[idx]), rtol=2e-6, atol=2e-6)
        np.testing.assert_array_equal(split.y.numpy(), fitted.transform_target(used.iloc[idx]["label"]))


def test_unseen_class_with_a_fitted_preprocessor_is_named():
    df = pd.DataFrame({"x": np.arange(30.0), "y": ["a", "b", "c"] * 10})
    pre = prepare(df.iloc[:20].assign(y=["a", "b"] * 10), target="y").preprocessor
    with pytest.raises(DataError, match="not seen in training, e.g. 'c'"):
        prepare(df, preprocessor=pre)


def test_large_magnitude_float_columns_keep_float64(tmp_path):
    rng = np.random.default_rng(2)
    n = 500
    df = pd.DataFrame({"lat": 37.7749 + rng.normal(0, 0.001, n), "z": rng.normal(size=n), "y": rng.normal(size=n)})
    path = tmp_path / "geo.csv"
    df.to_csv(path, index=False)
    table = read_table(path)
    assert table["lat"].dtype == pl.Float64 and table["z"].dtype == pl.Float32
    data = prepare(table, target="y")
    assert_same(data, *reference(pacsv.read_csv(path).to_pandas(), "y"), rel=1e-6)


def test_large_float32_table_in_parallel_chunks():
    """Enough rows that the float32 columns are gathered and standardised on worker threads."""
    rng = np.random.default_rng(6)
    n = 120_000
    df = pd.DataFrame({f"x{i}": (rng.normal(i, i + 1, n)).astype(np.float32) for i in range(6)})
    df.loc[rng.choice(n, 50, replace=False), "x2"] = np.nan
    df["colour"] = rng.choice(["red", "green"], n)
    df["y"] = rng.choice(["a", "b", "c"], n)
    for missing in ("impute", "drop"):
        assert_same(prepare(df, target="y", missing=missing), *reference(df, "y", missing=missing))
    features = [c for c in df.columns if c != "y"]
    data = prepare(df, target="y", features=features[::-1])
    assert data.preprocessor.feature_names == features[::-1]
    np.testing.assert_allclose(data.val.X.numpy(), data.preprocessor.transform_features(
        df.iloc[split_indices(n, (0.7, 0.15, 0.15), 0, _label_keys(df["y"]).astype(str))[1]]), rtol=2e-6, atol=2e-6)


# ---------------------------------------------------------------------------------------------- the CSV reader (polars)

@pytest.fixture
def small_ranges(monkeypatch):
    """polars types the columns from fewer rows, so a small file's later rows can disagree with them."""
    from nnstudio.core.data import read

    monkeypatch.setattr(read, "_SCHEMA_ROWS", 100)
    return read


def arrow_frame(path) -> pd.DataFrame:
    """A reference reading: arrow's whole-file reader, float64, empty text cells missing."""
    return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=","),
                          convert_options=pacsv.ConvertOptions(strings_can_be_null=True)).to_pandas()


def assert_frames_match(got: pl.DataFrame, want: pd.DataFrame):
    got = got.to_pandas()
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for c in want.columns:
        if pd.api.types.is_float_dtype(want[c].dtype):
            assert got[c].dtype in (np.float32, np.float64), (c, got[c].dtype)
            np.testing.assert_allclose(got[c].to_numpy(dtype=float), want[c].to_numpy(dtype=float), rtol=1e-7)
        else:  # text may come as a Categorical: the values, missing ones as None, must agree
            values = [[None if pd.isna(v) else v for v in f[c].astype(object).tolist()] for f in (got, want)]
            assert values[0] == values[1], c


def test_ranges_and_blocks_give_the_whole_table(tmp_path, small_ranges):
    rng = np.random.default_rng(8)
    n = 6000
    df = pd.DataFrame({"a": rng.normal(size=n).round(5), "n": rng.integers(-5, 5, n), "b": rng.choice([True, False], n),
                       "s": rng.choice(["x, quoted", 'say "hi"', "plain"], n), "y": rng.normal(100, 1, n)})
    df.loc[rng.choice(n, 40, replace=False), "a"] = np.nan
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    assert path.stat().st_size > 4 * 20_000
    got = read_table(path)
    assert got["a"].dtype == pl.Float32 and got["y"].dtype == pl.Float64  # y: 100 ± 1 is too coarse in float32
    assert_frames_match(got, arrow_frame(path))
    assert got["s"].to_list() == df["s"].tolist()


@pytest.mark.parametrize("late", ["float_after_ints", "text_after_numbers", "values_after_empty"])
def test_types_that_change_after_the_sampled_rows_are_read_whole(tmp_path, small_ranges, late):
    n = 5000
    first = {"float_after_ints": "1", "text_after_numbers": "2.5", "values_after_empty": ""}[late]
    last = {"float_after_ints": "1.5", "text_after_numbers": "n/a?", "values_after_empty": "7"}[late]
    lines = ["k,v"] + [f"{i},{first}" for i in range(n - 1)] + [f"{n},{last}"]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    got = read_table(path)
    assert_frames_match(got, arrow_frame(path))
    assert str(got["v"][-1]) in (last, "7.0")


def test_bom_and_crlf_with_ranges(tmp_path, small_ranges):
    n = 4000
    text = "idé;val\r\n" + "".join(f"r{i % 7};{i / 3:.4f}\r\n" for i in range(n))
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    got = read_table(path)
    assert list(got.columns) == ["idé", "val"] and len(got) == n
    np.testing.assert_allclose(got["val"].to_numpy().astype(float), np.round(np.arange(n) / 3, 4), rtol=1e-7)


def reference_split(n, fractions, seed=0, labels=None):
    """split_indices as first written: per class in np.unique order, each part sorted."""
    fr = list(fractions) + [0.0] * (3 - len(fractions))
    rng = np.random.default_rng(seed)

    def cut(idx):
        idx = rng.permutation(idx)
        n_val = int(round(fr[1] * len(idx)))
        n_test = int(round(fr[2] * len(idx)))
        n_train = len(idx) - n_val - n_test
        return [idx[:n_train], idx[n_train:n_train + n_val], idx[n_train + n_val:]]

    if labels is None:
        parts = cut(np.arange(n))
    else:
        parts = [[], [], []]
        for value in np.unique(labels):
            for k, piece in enumerate(cut(np.flatnonzero(labels == value))):
                parts[k].append(piece)
        parts = [np.sort(np.concatenate(p)) for p in parts]
    return [np.sort(p) for p in parts]


@pytest.mark.parametrize("labels", [None, "str", "small_int", "big_int", "bool"])
@pytest.mark.parametrize("fractions", [(0.7, 0.15, 0.15), (0.5, 0.5), (1.0, 0.0, 0.0)])
def test_split_indices_equal_the_first_implementation(labels, fractions):
    rng = np.random.default_rng(1)
    n = 1001
    values = {None: None, "str": rng.choice(["b", "a", "c10", "c9"], n), "small_int": rng.integers(-3, 4, n),
              "big_int": rng.choice([-70000, 5, 10**9], n), "bool": rng.choice([True, False], n)}[labels]
    for seed in (0, 5):
        got = split_indices(n, fractions, seed, values)
        want = reference_split(n, fractions, seed, values)
        assert all(g.dtype == np.int64 and np.array_equal(g, w) for g, w in zip(got, want))


def test_short_rows_after_long_ones(tmp_path, small_ranges):
    long = "x" * 200
    lines = (["a,s,b"] + [f"{i / 7:.3f},{long},{i}" for i in range(400)]
             + [f"{i / 7:.3f},s,{i}" for i in range(400, 30000)])
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    got = read_table(path)
    assert len(got) == 29999 + 1 and got["a"].dtype == pl.Float32
    np.testing.assert_allclose(got["a"].to_numpy().astype(float), np.round(np.arange(30000) / 7, 3), rtol=1e-7)
    assert got["b"].to_list() == list(range(30000))
    assert_frames_match(got, arrow_frame(path))


@pytest.mark.parametrize("values", [["b", "a", None, "b", "10", "9"], [3.0, 1.0, np.nan, 3.0], [True, False, True],
                                    [2, 7, 2], pl.Series([1.5, None, 0.1, 1.5], dtype=pl.Float32),
                                    pl.Series(["u", None, "v", "u"], dtype=pl.Categorical),
                                    pl.Series(["u", None, "v", "u"], dtype=pl.Enum(["v", "u", "never"]))])
def test_label_codes_equal_the_sorted_keys_of_every_row(values):
    from nnstudio.core.data import _label_codes

    series = values if isinstance(values, pl.Series) else pl.Series(values, strict=False)
    keys, codes = _label_codes(series)
    missing = series.is_null()
    if series.dtype.is_float():
        missing = missing | series.is_nan().fill_null(False)
    present = ~missing.to_numpy()
    labels = _label_keys(series.filter(~missing)).astype(str)
    assert keys.tolist() == np.unique(labels).tolist()
    assert (codes[~present] == -1).all()
    assert keys[codes[present]].tolist() == labels.tolist()


def test_summary_classes_and_model_outputs_count_label_keys():
    from nnstudio.core.data import model_io_size, summarize

    df = gappy_frame()
    counts = pd.Series(_label_keys(df["label"].dropna())).value_counts().sort_index()
    assert summarize(df, "label")["classes"] == {str(k): int(v) for k, v in counts.items()}
    assert model_io_size(df, "label")[1] == len(counts) == 5
    df["num"] = np.random.default_rng(0).choice([1.0, 2.0, 30.0], len(df))
    assert summarize(df, "num", "multiclass")["classes"] == {"1": int((df.num == 1).sum()), "2": int((df.num == 2).sum()),
                                                             "30": int((df.num == 30).sum())}


def test_fractional_class_labels_read_as_float32_keep_their_spelling(tmp_path):
    rng = np.random.default_rng(3)
    n = 300
    df = pd.DataFrame({"x": rng.normal(size=n), "rating": rng.choice([0.1, 0.7], n)})
    path = tmp_path / "r.csv"
    df.to_csv(path, index=False)
    table = read_table(path)
    assert table["rating"].dtype == pl.Float32
    data = prepare(table, target="rating")
    assert data.task == "binary" and data.preprocessor.classes == ["0.1", "0.7"]
    assert _label_keys(pl.Series([0.1, None, 2.0, 2.5e-7], dtype=pl.Float32)).tolist() == ["0.1", "nan", "2", "2.5e-07"]
    assert_same(data, *reference(arrow_frame(path), "rating"), rel=1e-6)


def test_statistics_stay_exact_when_the_first_training_rows_are_missing():
    """The one-pass sums are shifted by the first training rows' mean; none there (all missing) means no
    shift, and a column far from zero then takes the exact second pass."""
    rng = np.random.default_rng(11)
    n = 3000
    far = (5000 + rng.normal(0, 1, n)).astype(np.float32)
    far[:400] = np.nan
    df = pd.DataFrame({"far": far, "near": rng.normal(size=n).astype(np.float32), "y": rng.normal(size=n)})
    data = prepare(df, target="y")
    assert_same(data, *reference(df, "y"))
    train = far[split_indices(n, (0.7, 0.15, 0.15))[0]].astype(np.float64)
    assert data.preprocessor.features[0]["std"] == pytest.approx(float(np.nanstd(train)), rel=1e-9)
