"""Which column of a table lists image files: read from tables and images written to disk by the test."""

from __future__ import annotations

import numpy as np
import polars as pl
from PIL import Image

from nnstudio.core.data.image_table import default_label, image_path_column
from nnstudio.core.data.images import load_images
from nnstudio.core.data.read import read_table


def _images(folder, n=6):
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        Image.fromarray(np.full((6, 5), 40 * i, dtype=np.uint8)).save(folder / f"im{i}.png")
        names.append(f"im{i}.png")
    return names


def test_the_column_of_existing_image_files_relative_to_the_table_is_found(tmp_path):
    names = _images(tmp_path / "img")
    csv = tmp_path / "t.csv"
    rows = [f"note {i},img/{n},{'ab'[i % 2]}" for i, n in enumerate(names)] + ["empty,,a"]  # an empty cell
    csv.write_text("comment,path,label\n" + "\n".join(rows) + "\n")
    frame = read_table(csv)
    assert image_path_column(frame, tmp_path) == "path"
    assert default_label(list(frame.columns), "path") == "label"
    # what the column names is what load_images reads with it
    data = load_images(csv, image_column="path", split=(0.5, 0.25, 0.25))
    assert data.report["rows_used"] == 6 and data.preprocessor.classes == ["a", "b"]


def test_absolute_paths_and_parquet_count_and_a_few_missing_files_do_not_hide_the_column(tmp_path):
    names = _images(tmp_path / "far" / "away")
    files = [str(tmp_path / "far" / "away" / n) for n in names] + [str(tmp_path / "gone.png")]
    pq = tmp_path / "tables" / "t.parquet"
    pq.parent.mkdir()
    pl.DataFrame({"file": files, "y": [i % 2 for i in range(len(files))]}).write_parquet(pq)
    assert image_path_column(read_table(pq), pq.parent) == "file"


def test_names_that_only_look_like_images_or_other_text_are_not_an_image_column(tmp_path):
    _images(tmp_path / "img")
    frame = pl.DataFrame({"file": [f"photo{i}.png" for i in range(6)],  # image names, but no such files
                          "town": ["a", "b", "c", "d", "e", "f"], "y": [0, 1] * 3})
    assert image_path_column(frame, tmp_path) is None
    readme = tmp_path / "img" / "readme.txt"
    readme.write_text("x")
    frame = pl.DataFrame({"doc": ["img/readme.txt"] * 6, "y": [0, 1] * 3})  # existing files, not images
    assert image_path_column(frame, tmp_path) is None
    only = pl.DataFrame({"file": [f"img/im{i}.png" for i in range(6)]})  # no column left for the labels
    assert image_path_column(only, tmp_path) is None
