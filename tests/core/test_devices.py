"""core.devices: what is listed, what `auto` picks, and that model and data end on the same device."""

from __future__ import annotations

import pytest
import torch

from corehelpers import make_trainer
from nnstudio.core.devices import list_devices, resolve_device
from nnstudio.core.errors import ConfigError

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def test_cpu_is_listed_first():
    devices = list_devices()
    assert devices[0].key == "cpu" and devices[0].label == "CPU"
    assert len({d.key for d in devices}) == len(devices)
    cuda = [d for d in devices if d.key.startswith("cuda")]
    assert len(cuda) == (torch.cuda.device_count() if HAS_CUDA else 0)
    assert all(d.memory_bytes and d.memory_bytes > 0 for d in cuda)


def test_auto_picks_cuda_then_mps_then_cpu():
    expected = "cuda" if HAS_CUDA else "mps" if HAS_MPS else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("CPU") == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="CUDA is available here")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_a_config_error(name):
    with pytest.raises(ConfigError, match="CUDA"):
        resolve_device(name)


@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_cuda_index_out_of_range():
    with pytest.raises(ConfigError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


@pytest.mark.parametrize("name", ["banana", "tpu", "cuda:x"])
def test_unknown_device(name):
    with pytest.raises(ConfigError, match="device"):
        resolve_device(name)


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_model_and_data_end_on_the_same_device(flowers_data, device):
    trainer = make_trainer(flowers_data, epochs=1, device=device)
    trainer.fit()
    want = resolve_device(device)
    params = {p.device for p in trainer.model.parameters()} | {b.device for b in trainer.model.buffers()}
    data = {t.device for part in (trainer.data.train, trainer.data.val, trainer.data.test) for t in (part.X, part.y)}
    assert params == data == {trainer.device}
    assert trainer.device.type == want.type
