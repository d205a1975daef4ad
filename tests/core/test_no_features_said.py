"""#20.13: when nothing is left to train on, each column left out is named with why and how to keep it; a name
given twice in a header is refused and said."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from corehelpers import cli_env, write_toml

from nnstudio.core.data import load_dataset, prepare, read_table
from nnstudio.core.errors import DataError


def _table(path, n=120):
    """A note with quoted newlines (unique text), a constant, 120 distinct rising ids, and the target."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["note", "site", "record_id", "label"])
        for i in range(n):
            w.writerow([f"visit {i}\nsaid: line two of note {i}", "north", 1000 + i, "yes" if i % 3 else "no"])
    return path


def _says_each_column(message):
    for column, why in (("note", "identifier"), ("site", "constant"), ("record_id", "identifier")):
        assert f"'{column}' (flagged: " in message and why in message, message
    assert "[data] exclude" in message and "exclude = []" in message and "Columns tab" in message, message


def test_automatic_flags_leaving_nothing_name_each_column_why_and_how(tmp_path):
    path = _table(tmp_path / "notes.csv")
    with pytest.raises(DataError) as info:
        load_dataset(path, "label")
    assert str(info.value).startswith("notes.csv: no feature columns left besides the target 'label'")
    _says_each_column(str(info.value))


def test_the_command_line_says_it_in_one_line(tmp_path):
    path = _table(tmp_path / "notes.csv")
    config = write_toml(tmp_path / "run.toml", path, target="label")
    done = subprocess.run([sys.executable, "-m", "nnstudio", "train", str(config), "--quiet"], cwd=tmp_path,
                          env=cli_env(), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    _says_each_column(lines[-1])


def test_keeping_one_as_the_message_says_trains(tmp_path):
    path = _table(tmp_path / "notes.csv")
    data = load_dataset(path, "label", exclude=["note", "record_id"])
    assert data.preprocessor.feature_names == ["site"]


def test_an_explicit_exclude_and_the_windows_roles_are_named_too(tmp_path):
    path = _table(tmp_path / "notes.csv")
    with pytest.raises(DataError) as info:
        load_dataset(path, "label", exclude=["note", "site", "record_id"])
    assert "'site' (flagged: constant" in str(info.value)
    with pytest.raises(DataError) as info:  # the window passes the features its Columns tab leaves
        prepare(read_table(path), "label", features=[])
    _says_each_column(str(info.value))


@pytest.mark.parametrize("header", ["a,b,a,label", '"a",b,"a",label', "\ufeffa,b,a,label"])
def test_a_name_twice_in_the_header_is_refused_and_said(tmp_path, header):
    path = tmp_path / "dup.csv"
    path.write_text(header + "\n1,2,3,x\n4,5,6,y\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_table(path)
    assert "dup.csv" in str(info.value) and "'a' in columns 1, 3" in str(info.value), info.value


def test_distinct_names_still_read(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("a,b,a_2,label\n1,2,3,x\n4,5,6,y\n", encoding="utf-8")
    assert read_table(path).columns == ["a", "b", "a_2", "label"]
