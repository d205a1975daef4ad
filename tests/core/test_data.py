"""core.data: reading every supported file, column kinds, the task, preprocessing, splits, the lazy Dataset."""

from __future__ import annotations

import numpy as np
import polars as pl
import pandas as pd
import pytest
import torch

from corehelpers import mixed_frame
from nnstudio.core.data import (
    MAX_CATEGORIES, LazyTableDataset, Preprocessor, column_kind, infer_task, load_dataset, prepare, read_table,
    split_indices)
from nnstudio.core.errors import DataError


# ---------------------------------------------------------------------------------------------- reading

@pytest.mark.parametrize("sep, encoding", [(",", "utf-8"), (";", "utf-8"), ("\t", "utf-8"), (",", "utf-8-sig"),
                                           (";", "latin-1"), ("\t", "utf-8-sig")])
@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_csv_delimiters_and_encodings(tmp_path, sep, encoding, suffix):
    df = mixed_frame()
    path = tmp_path / f"table{suffix}"
    df.to_csv(path, sep=sep, encoding=encoding, index=False)
    if encoding == "utf-8-sig":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    if encoding == "latin-1":
        assert b"\xe9" in path.read_bytes()  # é as one Latin-1 byte, invalid as UTF-8
    got = read_table(path)
    assert list(got.columns) == ["size", "colour", "flag", "label"]
    assert got["colour"].to_list() == df["colour"].tolist()  # é decoded right, BOM not glued to a name
    np.testing.assert_allclose(got["size"].to_numpy().astype(float), df["size"].to_numpy())
    assert [column_kind(got[c]) for c in got.columns] == ["numeric", "categorical", "boolean", "categorical"]


def test_tsv_suffix(tmp_path):
    path = tmp_path / "t.tsv"
    mixed_frame().to_csv(path, sep="\t", index=False)
    assert read_table(path).shape == (60, 4)


def test_parquet(tmp_path):
    df = mixed_frame()
    df.to_parquet(tmp_path / "t.parquet")
    got = read_table(tmp_path / "t.parquet")
    assert got.columns == list(df.columns)
    for name in df.columns:
        assert got[name].to_list() == df[name].tolist(), name


def test_npy_last_column_is_target(tmp_path):
    arr = np.column_stack([np.arange(10.0), np.arange(10.0) * 2, np.arange(10) % 2])
    np.save(tmp_path / "a.npy", arr)
    got = read_table(tmp_path / "a.npy")
    assert got.shape == (10, 3)
    np.testing.assert_array_equal(got[:, -1].to_numpy(), arr[:, -1])
    np.testing.assert_array_equal(got[:, :2].to_numpy(), arr[:, :2])
    data = load_dataset(tmp_path / "a.npy", split=(0.6, 0.2, 0.2))
    assert data.preprocessor.target == got.columns[-1]
    assert data.n_features == 2


def test_npz_x_y(tmp_path):
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    y = np.arange(20) % 3
    np.savez(tmp_path / "a.npz", X=X, y=y)
    got = read_table(tmp_path / "a.npz")
    assert got.shape == (20, 4)
    np.testing.assert_array_equal(got[:, :3].to_numpy(), X)
    np.testing.assert_array_equal(got[:, 3].to_numpy(), y)


def test_pt_tensors_x_y(tmp_path):
    X = torch.randn(30, 4)
    y = torch.arange(30) % 2
    torch.save({"X": X, "y": y}, tmp_path / "d.pt")
    got = read_table(tmp_path / "d.pt")
    assert got.shape == (30, 5)
    np.testing.assert_array_equal(got[:, :4].to_numpy(), X.numpy())
    np.testing.assert_array_equal(got[:, 4].to_numpy(), y.numpy())
    assert load_dataset(tmp_path / "d.pt").task == "binary"


@pytest.mark.parametrize("kind", ["npy", "npz"])
def test_object_arrays_are_refused_never_unpickled(tmp_path, kind):
    objects = np.array([{"a": 1}, {"b": 2}], dtype=object)
    path = tmp_path / f"obj.{kind}"
    if kind == "npy":
        np.save(path, objects, allow_pickle=True)
    else:
        np.savez(path, X=objects, y=np.array([0, 1]))
    with pytest.raises(DataError) as info:
        read_table(path)
    assert f"obj.{kind}" in str(info.value)
    assert "unsafe" not in str(info.value)  # never suggest the unsafe way out


def test_pt_with_python_objects_is_refused_without_running_them(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"X": torch.zeros(2, 2), "y": _Evil(f"open({str(marker)!r}, 'w').close()")}, tmp_path / "evil.pt")
    with pytest.raises(DataError) as info:
        read_table(tmp_path / "evil.pt")
    assert "evil.pt" in str(info.value)
    assert "weights_only` set to `False" not in str(info.value)
    assert not marker.exists()


class _Evil:
    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        import builtins

        return builtins.exec, (self.code,)


@pytest.mark.parametrize("name, content", [
    ("notes.xlsx", b"PK\x03\x04"),
    ("empty.csv", b""),
    ("header_only.csv", b"a,b\n"),
    ("random.csv", np.random.default_rng(0).bytes(4000)),
    ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8),
    ("ragged.csv", bytes(np.random.default_rng(1).integers(1, 256, 4000, dtype=np.uint8))),
    ("one_column.csv", b"a\n1\n2\n"),
    ("broken.parquet", b"garbage" * 20),
    ("broken.npy", b"garbage" * 20),
    ("broken.npz", b"garbage" * 20),
    ("broken.pt", b"garbage" * 20),
])
def test_bad_files_are_data_errors_naming_the_file(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError) as info:
        read_table(tmp_path / name)
    assert name in str(info.value)
    assert "unsafe" not in str(info.value) and "weights_only" not in str(info.value)


def test_folder_and_missing_file(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(DataError, match="folder.csv"):
        read_table(tmp_path / "folder.csv")
    with pytest.raises(DataError, match="nothere.csv"):
        read_table(tmp_path / "nothere.csv")


# ---------------------------------------------------------------------------------------------- kinds and task

@pytest.mark.parametrize("values, kind", [
    ([1.5, 2.0, 3.25], "numeric"),
    ([1, 5, 7], "numeric"),
    ([0, 1, 1, 0], "boolean"),
    ([True, False, True], "boolean"),
    (["True", "False", "True"], "boolean"),
    (["true", " FALSE", None], "boolean"),
    (["True", "TRUE", "false", "maybe"], "categorical"),  # a fourth spelling that is no boolean
    (["red", "green", "red"], "categorical"),
])
def test_column_kind(values, kind):
    assert column_kind(pd.Series(values)) == kind


@pytest.mark.parametrize("values, task", [
    (list(np.linspace(0.1, 9.7, 100)), "regression"),
    (["a", "b", "c"] * 20, "multiclass"),
    (["yes", "no"] * 20, "binary"),
    (["True", "False"] * 20, "binary"),
    ([0, 1, 2, 3] * 30, "multiclass"),
    ([1.0, 2.0, 3.0] * 40, "multiclass"),
    (list(range(100)), "regression"),  # many distinct integers are a quantity, not classes
])
def test_task_inference(values, task):
    assert infer_task(pd.Series(values)) == task


def test_target_by_name_and_default_last():
    df = mixed_frame(90)
    assert prepare(df).preprocessor.target == "label"
    data = prepare(df, target="size")
    assert data.preprocessor.target == "size" and data.task == "regression"
    assert "size" not in data.preprocessor.feature_names and "label" in data.preprocessor.feature_names


def test_missing_target_column_is_named(tmp_path):
    path = tmp_path / "t.csv"
    mixed_frame().to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        load_dataset(path, target="species")
    assert "'species'" in str(info.value) and "t.csv" in str(info.value)


def test_task_override():
    df = pd.DataFrame({"x": np.arange(60.0), "y": [0, 1, 2] * 20})
    assert prepare(df).task == "multiclass"
    reg = prepare(df, task="regression")
    assert reg.task == "regression" and reg.n_outputs == 1 and reg.train.y.dtype == torch.float32
    with pytest.raises(DataError, match="regression"):
        prepare(mixed_frame(), target="label", task="regression")


# ---------------------------------------------------------------------------------------------- preprocessing

def test_standardisation_is_fitted_on_the_training_split_only():
    rng = np.random.default_rng(3)
    n = 200
    df = pd.DataFrame({"a": np.arange(n, dtype=float) ** 1.5, "b": rng.normal(5, 3, n), "y": rng.normal(size=n)})
    split, seed = (0.6, 0.2, 0.2), 7
    data = prepare(df, target="y", split=split, seed=seed)
    train_idx = split_indices(n, split, seed)[0]
    for feature in data.preprocessor.features:
        column = df[feature["name"]]
        assert feature["mean"] == pytest.approx(column.iloc[train_idx].mean(), rel=1e-12)
        assert feature["std"] == pytest.approx(column.iloc[train_idx].std(ddof=0), rel=1e-12)
        assert feature["mean"] != pytest.approx(column.mean(), rel=1e-6)
    assert data.train.X.mean(0).abs().max() < 1e-5
    assert (data.train.X.std(0, unbiased=False) - 1).abs().max() < 1e-4
    assert data.preprocessor.target_mean == pytest.approx(df["y"].iloc[train_idx].mean())


def test_one_hot_encoding_uses_training_categories():
    df = pd.DataFrame({"colour": ["red", "green", "blue"] * 20, "x": np.arange(60.0), "y": np.arange(60.0) % 7})
    data = prepare(df, target="y", task="regression")
    assert data.preprocessor.encoded_names()[:3] == ["colour=blue", "colour=green", "colour=red"]
    block = data.train.X[:, :3]
    assert torch.equal(block.sum(1), torch.ones(len(block)))
    unseen = data.preprocessor.transform_features(pd.DataFrame({"colour": ["purple"], "x": [1.0]}))
    assert unseen[0, :3].tolist() == [0.0, 0.0, 0.0]


def test_one_hot_cap_names_the_column():
    n = 4 * MAX_CATEGORIES
    df = pd.DataFrame({"city": [f"c{i}" for i in range(n)], "x": np.arange(n, dtype=float), "y": np.arange(n) % 2})
    with pytest.raises(DataError) as info:
        prepare(df, target="y")
    assert "'city'" in str(info.value) and str(MAX_CATEGORIES) in str(info.value)


def test_string_class_labels_map_to_codes_and_decode_back():
    rng = np.random.default_rng(0)
    labels = rng.choice(["setosa", "versicolor", "virginica"], 150)
    code = {"setosa": 0.0, "versicolor": 10.0, "virginica": 20.0}
    df = pd.DataFrame({"marker": [code[l] for l in labels], "species": labels})
    data = prepare(df, target="species")
    pre = data.preprocessor
    assert data.task == "multiclass" and pre.classes == ["setosa", "versicolor", "virginica"]
    for part in (data.train, data.val, data.test):
        assert part.y.dtype == torch.int64 and set(part.y.tolist()) <= {0, 1, 2}
        raw_marker = (part.X[:, 0].double() * pre.features[0]["std"] + pre.features[0]["mean"]).round().tolist()
        by_marker = {v: k for k, v in code.items()}
        assert [pre.classes[i] for i in part.y.tolist()] == [by_marker[m] for m in raw_marker]
    assert pre.decode(torch.eye(3) * 5) == ["setosa", "versicolor", "virginica"]
    again = Preprocessor.from_dict(pre.to_dict())
    assert again.decode(torch.tensor([[0.0, 0.0, 1.0]])) == ["virginica"]


def test_binary_string_labels_decode_from_logits():
    df = pd.DataFrame({"x": np.arange(40.0), "churned": ["no", "yes"] * 20})
    data = prepare(df)
    assert data.task == "binary" and data.n_outputs == 1 and data.preprocessor.classes == ["no", "yes"]
    assert data.train.y.dtype == torch.float32
    assert data.preprocessor.decode(torch.tensor([[-2.0], [3.0]])) == ["no", "yes"]


def test_regression_targets_are_standardised_and_decoded_in_units():
    df = pd.DataFrame({"x": np.arange(50.0), "price": 1000 + 10 * np.arange(50.0)})
    data = prepare(df, target="price")
    pre = data.preprocessor
    assert abs(float(data.train.y.mean())) < 1e-5
    decoded = pre.decode(data.test.y.unsqueeze(1))
    assert decoded == pytest.approx((data.test.y.double() * pre.target_std + pre.target_mean).tolist())
    assert all(1000 <= v <= 1490 for v in decoded)


def _frame_with_gaps() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 100
    df = pd.DataFrame({"a": rng.normal(size=n), "c": rng.choice(["u", "v"], n).astype(object),
                       "y": rng.choice(["p", "q", "r"], n).astype(object)})
    df.loc[[1, 2, 3, 4, 5], "a"] = np.nan
    df.loc[[5, 6, 7], "c"] = None
    df.loc[[8, 9], "y"] = None
    return df


def test_missing_values_imputed_with_counts():
    data = prepare(_frame_with_gaps(), target="y", missing="impute")
    r = data.report
    assert r["missing_policy"] == "impute"
    assert r["missing_per_column"] == {"a": 5, "c": 3, "y": 2}
    assert r["rows_dropped_no_target"] == 2 and r["rows_used"] == 98
    assert r["n_train"] + r["n_val"] + r["n_test"] == 98
    for part in (data.train, data.val, data.test):
        assert torch.isfinite(part.X).all()


def test_missing_values_dropped_with_counts():
    data = prepare(_frame_with_gaps(), target="y", missing="drop")
    r = data.report
    assert r["missing_policy"] == "drop"
    assert r["rows_dropped_no_target"] == 2
    assert r["rows_dropped_missing"] == 7  # rows 1-7 (row 5 misses both)
    assert r["rows_used"] == 91 == r["n_train"] + r["n_val"] + r["n_test"]


def test_imputed_numeric_value_is_the_training_mean():
    df = pd.DataFrame({"a": [1.0, np.nan, 3.0, 5.0] * 15, "y": np.linspace(0, 1, 60)})
    data = prepare(df, target="y", split=(1.0, 0.0, 0.0))
    pre = data.preprocessor
    X = pre.transform_features(pd.DataFrame({"a": [np.nan, pre.features[0]["mean"]]}))
    assert X[0, 0] == X[1, 0] == 0.0


# ---------------------------------------------------------------------------------------------- splits

def test_stratified_split_keeps_class_proportions(flowers_csv):
    df = read_table(flowers_csv)
    # make the classes unbalanced so proportions matter
    df = pl.concat([df.filter(pl.col("species") != "setosa"), df.filter(pl.col("species") == "setosa").head(37)])
    split = (0.6, 0.25, 0.15)
    data = prepare(df, target="species", split=split, seed=11)
    counts = dict(zip(*df["species"].value_counts().to_dict(as_series=False).values()))
    for part, fraction in zip((data.train, data.val, data.test), split):
        got = torch.bincount(part.y, minlength=3).tolist()
        for k, name in enumerate(data.preprocessor.classes):
            assert abs(got[k] - fraction * counts[name]) <= 1, (name, got[k], fraction * counts[name])


def test_split_with_a_seed_repeats():
    a = split_indices(101, (0.7, 0.15, 0.15), seed=4)
    b = split_indices(101, (0.7, 0.15, 0.15), seed=4)
    c = split_indices(101, (0.7, 0.15, 0.15), seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    assert sorted(np.concatenate(a).tolist()) == list(range(101))
    d1 = prepare(mixed_frame(120), seed=9)
    d2 = prepare(mixed_frame(120), seed=9)
    assert torch.equal(d1.train.X, d2.train.X) and torch.equal(d1.test.y, d2.test.y)


@pytest.mark.parametrize("split", [(0.5, 0.2, 0.2), (0.7, 0.4, -0.1), (0.0, 0.5, 0.5), (0.5, 0.5, 0.0, 0.0)])
def test_bad_split_fractions(split):
    with pytest.raises(DataError, match="split|fraction"):
        split_indices(10, split)


# ---------------------------------------------------------------------------------------------- lazy Dataset

def test_lazy_table_dataset_with_a_shuffled_dataloader(tmp_path):
    rng = np.random.default_rng(0)
    n = 240
    X = rng.normal(size=(n, 4)) * [1, 2, 3, 4] + [5, 0, -5, 1]
    y = (X[:, 0] - 5 + (X[:, 1]) / 2 > 0).astype(np.float64) + (X[:, 2] + 5 > 2)
    arr = np.column_stack([X, y]).astype(np.float32)
    np.save(tmp_path / "big.npy", arr)
    mean, std = arr[:, :4].mean(0), arr[:, :4].std(0)
    ds = LazyTableDataset(tmp_path / "big.npy", mean, std, target_dtype=torch.long)
    assert len(ds) == n
    x0, y0 = ds[3]
    np.testing.assert_allclose(x0.numpy(), (arr[3, :4] - mean) / std, rtol=1e-6)
    assert y0.dtype == torch.long and int(y0) == int(arr[3, 4])

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True)
    first = torch.cat([yb for _, yb in loader])
    assert sorted(first.tolist()) == sorted(arr[:, 4].astype(int).tolist())  # every row once per epoch
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    loss_fn = torch.nn.CrossEntropyLoss()
    epoch_losses = []
    for _ in range(6):
        total = 0.0
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        epoch_losses.append(total / n)
    assert epoch_losses[-1] < 0.6 * epoch_losses[0]


def test_lazy_table_dataset_refuses_object_arrays(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([[{"a": 1}, 2]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="obj.npy"):
        LazyTableDataset(tmp_path / "obj.npy")


@pytest.mark.parametrize("values", [
    [1.0, 2.5, 3.0, float("nan"), 1e20, -0.0, float("inf")], [1, 2, 3], [True, False], ["a", "b"], ["a", None],
    pl.Series([1.5, 0.1, None], dtype=pl.Float32), pl.Series([1, None], dtype=pl.Int64), pl.Series([], dtype=pl.Float64)])
def test_vectorised_label_keys_equal_per_value_keys(values):
    from nnstudio.core.data import _label_key, _label_keys

    series = values if isinstance(values, pl.Series) else pl.Series(values)
    f32 = series.dtype == pl.Float32

    def key(v):  # missing floats are NaN; float32 values as the file spelled them
        if v is None:
            return "nan" if series.dtype.is_float() else "None"
        return _label_key(float(str(np.float32(v))) if f32 else v)

    assert list(_label_keys(series)) == [key(v) for v in series.to_list()]
