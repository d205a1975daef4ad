"""Column roles in the core: columns that cannot be features are named with the reason and left out by
default; `exclude` (load_dataset, the TOML's [data] exclude, `nnstudio train`) leaves out exactly the named ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from corehelpers import finish, start_cli, write_toml
from nnstudio.core.config import RunConfig
from nnstudio.core.data import (MAX_CATEGORIES, describe_columns, feature_columns, load_dataset, read_table,
                                unusable_features)
from nnstudio.core.errors import ConfigError, DataError


def write_customers(path, n=200):
    rng = np.random.default_rng(4)
    lines = ["customer_id,signup,note,country,const,age,spend,churned"]
    for i in range(n):
        lines.append(f"{1000 + i},2024-0{1 + i % 9}-{10 + i % 18},comment number {i},{rng.choice(['NO', 'SE'])},"
                     f"x,{rng.integers(18, 80)},{rng.normal(50, 9):.2f},{rng.choice(['yes', 'no'])}")
    path.write_text("\n".join(lines) + "\n")


def test_unusable_columns_are_named_with_the_reason(tmp_path):
    path = tmp_path / "customers.csv"
    write_customers(path)
    df = read_table(path)
    flags = unusable_features(df, "churned", describe_columns(df))
    assert set(flags) == {"customer_id", "signup", "note", "const"}
    assert "identifier" in flags["customer_id"]
    assert flags["signup"] == "dates"
    assert f"one-hot cap {MAX_CATEGORIES}" in flags["note"] or "identifier" in flags["note"]
    assert "constant" in flags["const"]
    assert unusable_features(df, "customer_id").get("customer_id") is None  # never the target


def test_text_above_the_cap_with_repeats_is_flagged_for_the_cap(tmp_path):
    path = tmp_path / "t.csv"
    income = np.random.default_rng(0).permutation(400) * 10 + 20000  # distinct, in no order: a measurement
    path.write_text("city,income,row,y\n" + "".join(f"c{i % 80},{income[i]},{i},{i % 2}\n" for i in range(400)))
    flags = unusable_features(read_table(path), "y")
    assert flags == {"city": f"80 categories (one-hot cap {MAX_CATEGORIES})",
                     "row": "identifier (unique in every row)"}


def test_load_dataset_leaves_flagged_columns_out_unless_told(tmp_path):
    path = tmp_path / "customers.csv"
    write_customers(path)
    data = load_dataset(path, target="churned")
    assert data.preprocessor.feature_names == ["country", "age", "spend"]
    assert data.report["excluded"] == ["customer_id", "signup", "note", "const"]
    assert data.n_features == 4  # country one-hot (2) + age + spend
    data = load_dataset(path, target="churned", exclude=["customer_id", "signup", "note", "age"])
    assert data.preprocessor.feature_names == ["country", "const", "spend"]
    with pytest.raises(DataError, match=r"customers.csv: .*'note' has \d+ distinct values.*ignore"):
        load_dataset(path, target="churned", exclude=[])
    with pytest.raises(DataError, match="excluded column.*nope"):
        feature_columns(read_table(path), "churned", ["nope"])


def test_exclude_in_the_toml_round_trips_and_is_checked(tmp_path):
    cfg = RunConfig()
    cfg.data.path = "t.csv"
    cfg.data.exclude = ["customer_id", "note"]
    cfg.save(tmp_path / "p.toml")
    assert 'exclude = [\n    "customer_id",\n    "note",\n]' in (tmp_path / "p.toml").read_text() or \
        'exclude = ["customer_id", "note"]' in (tmp_path / "p.toml").read_text()
    assert RunConfig.load(tmp_path / "p.toml").data.exclude == ["customer_id", "note"]
    assert "exclude" not in RunConfig().to_dict()["data"]
    (tmp_path / "bad.toml").write_text('[data]\npath = "t.csv"\nexclude = "customer_id"\n')
    with pytest.raises(ConfigError, match=r"bad.toml: \[data\] exclude must be a list of column names"):
        RunConfig.load(tmp_path / "bad.toml")


def test_nnstudio_train_honours_exclude(tmp_path):
    path = tmp_path / "customers.csv"
    write_customers(path)
    write_toml(tmp_path / "run.toml", path, target="churned", epochs=1,
               extra="")
    text = (tmp_path / "run.toml").read_text().replace("seed = 0\n\n[model]", 'seed = 0\nexclude = ["customer_id", '
                                                        '"signup", "note", "const", "age"]\n\n[model]', 1)
    (tmp_path / "run.toml").write_text(text)
    proc = finish(start_cli(["train", "run.toml"], tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "excluded: customer_id, signup, note, const, age" in proc.stderr
    raw = torch.load(tmp_path / "model.pt", weights_only=True)
    names = [f["name"] for f in raw["preprocessing"]["features"]]
    assert names == ["country", "spend"]
