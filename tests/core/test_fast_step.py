"""The engine's optimizer stepper leaves exactly what `optimizer.zero_grad(); ...; optimizer.step()` would."""

import copy

import pytest
import torch
from torch import nn

from nnstudio.core.training.engine import _Stepper


def _train(model, optimizer, steps, use_stepper, scheduler=None, freeze_at=None):
    stepper = _Stepper(optimizer) if use_stepper else None
    gen = torch.Generator().manual_seed(1)
    for i in range(steps):
        x, y = torch.randn(64, 6, generator=gen), torch.randint(0, 4, (64,), generator=gen)
        if stepper:
            stepper.zero_grad()
        else:
            optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if freeze_at is not None and i == freeze_at:
            model[0].bias.grad = None  # a parameter without a gradient this step: torch skips it
        if stepper:
            stepper.step()
        else:
            optimizer.step()
        if scheduler is not None:
            scheduler.step()


@pytest.mark.parametrize("make", [
    lambda p: torch.optim.Adam(p, lr=1e-2, fused=True),
    lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.1, amsgrad=True, fused=True),
    lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.05, fused=True),
    lambda p: torch.optim.Adam(p, lr=1e-2),  # not fused: always torch's own step
    lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9),
])
@pytest.mark.parametrize("with_scheduler", [False, True])
def test_bit_identical_to_optimizer_step(make, with_scheduler):
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    runs = []
    for use_stepper in (False, True):
        model = copy.deepcopy(base)
        opt = make(model.parameters())
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=30) if with_scheduler else None
        _train(model, opt, 25, use_stepper, sched, freeze_at=12)
        runs.append((model, opt))
    (m1, o1), (m2, o2) = runs
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)
    s1, s2 = o1.state_dict(), o2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for k in s1["state"]:
        for name, value in s1["state"][k].items():
            assert torch.equal(value, s2["state"][k][name]), name


def test_falls_back_to_torch_with_hooks():
    model = nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), fused=True)
    calls = []
    opt.register_step_post_hook(lambda *args: calls.append(1))
    stepper = _Stepper(opt)
    for _ in range(3):
        stepper.zero_grad()
        model(torch.randn(4, 3)).sum().backward()
        stepper.step()
    assert len(calls) == 3


def test_the_fast_path_is_taken_for_the_engines_default_optimizer():
    from nnstudio.core.training.engine import TrainConfig, make_optimizer

    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    stepper = _Stepper(make_optimizer(model.parameters(), TrainConfig(), torch.device("cpu")))
    assert stepper.fast
    for _ in range(2):
        stepper.zero_grad()
        model(torch.randn(4, 3)).sum().backward()
        stepper.step()
    assert stepper.groups is not None
