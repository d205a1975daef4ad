"""A checkpoint whose pickle asks for code is refused with that said and the code named, whatever the protocol."""

from __future__ import annotations

import builtins
import pickle
import subprocess
import sys

import pytest
import torch
from corehelpers import cli_env, write_toml

from nnstudio.core.errors import CheckpointError
from nnstudio.core.model.checkpoint import load_checkpoint


class _Exec:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').close()",)


def _write(path, marker, how: str):
    obj = {"format": "nnstudio", "version": 1, "state_dict": _Exec(str(marker))}
    if how.startswith("torch"):  # what torch.save(..., pickle_protocol=N) writes, zip or legacy
        _, proto, kind = how.split("-")
        torch.save(obj, path, pickle_protocol=int(proto), _use_new_zipfile_serialization=kind == "zip")
    else:  # pickle.dump straight to a .pt, as some course code does
        with open(path, "wb") as fh:
            pickle.dump(obj, fh, protocol=int(how.split("-")[1]))
    return path


HOWS = ["torch-4-zip", "torch-5-legacy", "pickle-0", "pickle-1", "pickle-4", "pickle-5"]


def _says_code(message: str, name: str) -> None:
    assert name in message and "refused" in message and "Python code" in message, message
    assert "builtins.exec" in message or "__builtin__.exec" in message, message
    assert "damaged" not in message and "not a PyTorch file" not in message, message


@pytest.mark.parametrize("how", HOWS)
def test_core_names_the_code_it_asked_for(tmp_path, how):
    marker = tmp_path / "pwned"
    path = _write(tmp_path / "trap.pt", marker, how)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    _says_code(str(info.value), "trap.pt")
    assert not marker.exists()


def _cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "nnstudio", *map(str, args)], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("how", ["torch-4-zip", "pickle-0"])
def test_cli_info_predict_and_resume_say_it_asked_for_code(tmp_path, flowers_csv, how):
    marker = tmp_path / "pwned"
    path = _write(tmp_path / "trap.pt", marker, how)
    config = write_toml(tmp_path / "run.toml", flowers_csv, target="species", epochs=1)
    for args in (["info", path], ["predict", path, flowers_csv, "--out", tmp_path / "p.csv"],
                 ["train", config, "--resume", path]):
        done = _cli(args, tmp_path)
        assert done.returncode != 0, args
        assert "Traceback" not in done.stderr, done.stderr
        _says_code(done.stderr.strip().splitlines()[-1], "trap.pt")
    assert not marker.exists()
    assert not (tmp_path / "p.csv").exists()
