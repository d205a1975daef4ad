"""Missing values read from real files: empty cells and NA spellings in numeric, text and target columns of
CSV and Parquet files are missing, counted, imputed or dropped; rows without a target are dropped and counted."""

from __future__ import annotations

import os
import socket
import threading

import numpy as np
import polars as pl
import pytest

from nnstudio.core.data import NA_SPELLINGS, describe_columns, infer_task, load_dataset, prepare, read_table
from nnstudio.core.errors import DataError
from nnstudio.resources import sample_dataset

SPELLINGS = ["", "NA", "n/a", "N/A", "null", "NULL", "NaN", "nan", "None", "none", "?", " na "]


def write_gappy_csv(path, n=400, sep=","):
    """income (numeric), city (text), score (numeric), bought (yes/no target); known cells left empty or
    spelled as missing; returns the frame of what was written (None where missing)."""
    rng = np.random.default_rng(0)
    income = [f"{v:.2f}" for v in rng.normal(50, 10, n)]
    city = list(rng.choice(["Oslo", "Lima", "Pune"], n))
    score = [str(int(v)) for v in rng.integers(0, 100, n)]
    bought = list(rng.choice(["yes", "no"], n))
    gaps = {"income": range(0, 40), "city": range(40, 100), "score": range(100, 110), "bought": range(380, 400)}
    cols = {"income": income, "city": city, "score": score, "bought": bought}
    for name, rows in gaps.items():
        for k, i in enumerate(rows):
            cols[name][i] = SPELLINGS[k % len(SPELLINGS)]
    lines = [sep.join(cols)] + [sep.join(cols[c][i] for c in cols) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return {name: len(rows) for name, rows in gaps.items()}


def test_na_spellings_are_documented_in_the_readme():
    readme = (sample_dataset().parents[2] / "README.md").read_text(encoding="utf-8")
    for spelling in ("NA", "N/A", "null", "NaN", "None", "?"):
        assert f"`{spelling}`" in readme
    assert set(NA_SPELLINGS) >= {"", "na", "n/a", "null", "nan", "none", "?"}


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_csv_blanks_and_spellings_are_missing_in_every_column_kind(tmp_path, sep):
    path = tmp_path / "shop.csv"
    gaps = write_gappy_csv(path, sep=sep)
    df = read_table(path)
    info = {c.name: c for c in describe_columns(df)}
    assert {name: info[name].missing for name in gaps} == gaps
    assert info["income"].kind == info["score"].kind == "numeric"
    assert info["city"].kind == "categorical" and info["city"].unique == 3  # no "" or "NA" category
    assert info["bought"].unique == 2
    assert infer_task(df["bought"]) == "binary"  # yes/no with blanks is binary, not 3-class


def test_impute_keeps_rows_and_counts_each_column(tmp_path):
    path = tmp_path / "shop.csv"
    gaps = write_gappy_csv(path)
    data = load_dataset(path, target="bought", missing="impute")
    r = data.report
    assert r["task"] == "binary" and data.preprocessor.classes == ["no", "yes"]
    assert r["missing_per_column"] == gaps
    assert r["rows_dropped_no_target"] == 20 and r["rows_used"] == 380
    names = data.preprocessor.encoded_names()
    assert names == ["income", "city=Lima", "city=Oslo", "city=Pune", "score"]
    X = np.concatenate([data.train.X.numpy(), data.val.X.numpy(), data.test.X.numpy()])
    assert np.isfinite(X).all()
    city = X[:, 1:4]
    assert int((city.sum(1) == 0).sum()) == 60  # a missing category is all-zero, never its own column
    # a missing number is the training mean: 0 after standardising
    assert int((X[:, 0] == 0).sum()) >= 40 and int((X[:, 4] == 0).sum()) >= 10


def test_drop_removes_every_row_with_a_gap(tmp_path):
    path = tmp_path / "shop.csv"
    write_gappy_csv(path)
    r = load_dataset(path, target="bought", missing="drop").report
    assert r["rows_dropped_no_target"] == 20
    assert r["rows_dropped_missing"] == 40 + 60 + 10
    assert r["rows_used"] == 400 - 20 - 110


def test_parquet_nulls_and_spelled_gaps(tmp_path):
    n = 120
    rng = np.random.default_rng(1)
    frame = pl.DataFrame({
        "x": [None if i < 7 else float(v) for i, v in enumerate(rng.normal(size=n))],
        "colour": [None if i % 10 == 0 else ("N/A" if i % 10 == 1 else str(c))
                   for i, c in enumerate(rng.choice(["red", "blue"], n))],
        "flag": [None if i < 3 else bool(b) for i, b in enumerate(rng.integers(0, 2, n))],
        "label": [None if i >= n - 5 else str(c) for i, c in enumerate(rng.choice(["yes", "no"], n))],
    })
    path = tmp_path / "t.parquet"
    frame.write_parquet(path)
    df = read_table(path)
    info = {c.name: c for c in describe_columns(df)}
    assert {c: info[c].missing for c in info} == {"x": 7, "colour": 24, "flag": 3, "label": 5}
    assert info["colour"].unique == 2 and info["flag"].kind == "boolean"
    data = prepare(df, target="label", missing="drop")
    assert data.task == "binary"
    assert data.report["rows_dropped_no_target"] == 5
    dropped = {i for i in range(n - 5) if i < 7 or i % 10 in (0, 1) or i < 3}
    assert data.report["rows_dropped_missing"] == len(dropped)


def test_decimal_commas_in_a_semicolon_file_are_numbers(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("weight;price;ref;y\n1,5;1.234,5;A-1;a\n2,25;NA;A-2;b\n3;7,0;A-3;a\n;8;A-4;b\n")
    df = read_table(path)
    assert df["weight"].to_list() == [1.5, 2.25, 3.0, None]
    assert describe_columns(df)[0].kind == "numeric"
    assert describe_columns(df)[1].kind == "categorical"  # "1.234,5" is not a plain decimal-comma number
    assert df["ref"].to_list() == ["A-1", "A-2", "A-3", "A-4"]


def test_commas_in_a_comma_file_stay_text(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('a,b\n"1,5",x\n"2,5",y\n')
    assert read_table(path)["a"].to_list() == ["1,5", "2,5"]


def test_penguins_sex_is_binary_and_its_eleven_gaps_are_dropped():
    data = load_dataset(sample_dataset("penguins.csv"), target="sex", missing="drop")
    r = data.report
    assert r["task"] == "binary" and data.preprocessor.classes == ["female", "male"]
    assert r["missing_per_column"]["sex"] == 11 and r["rows_dropped_no_target"] == 11
    assert r["rows_used"] == 333


# ---------------------------------------------------------------------------------------------- hostile files

def test_a_fifo_named_csv_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    result = {}

    def read():
        try:
            read_table(path)
        except DataError as exc:
            result["error"] = str(exc)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # unblock the reader before failing, so no thread is left behind
        with open(path, "wb"):
            pass
        pytest.fail("read_table blocked on a FIFO")
    assert "pipe.csv" in result["error"] and "FIFO" in result["error"]


def test_a_device_and_a_socket_are_refused(tmp_path):
    with pytest.raises(DataError, match="device"):
        read_table("/dev/zero")
    path = tmp_path / "s.csv"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        with pytest.raises(DataError, match="s.csv: is a socket"):
            read_table(path)
    finally:
        sock.close()


def test_nested_parquet_columns_are_refused_by_name(tmp_path):
    path = tmp_path / "nested.parquet"
    pl.DataFrame({"x": [1.0, 2.0], "tags": [["a"], ["b", "c"]], "meta": [{"k": 1}, {"k": 2}],
                  "y": [0, 1]}).write_parquet(path)
    with pytest.raises(DataError) as info:
        read_table(path)
    assert "nested.parquet" in str(info.value) and "tags, meta" in str(info.value)
