"""The engine's direct fused-Adam step falls back to torch.optim when a torch release changes the kernel."""

import torch

from nnstudio.core.training import engine


def test_kernel_schema_change_falls_back_with_identical_weights(monkeypatch):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    reference = torch.nn.Linear(4, 2)
    reference.load_state_dict(model.state_dict())
    stepper = engine._Stepper(torch.optim.Adam(model.parameters(), lr=0.1, fused=True))
    ref_opt = torch.optim.Adam(reference.parameters(), lr=0.1, fused=True)
    assert stepper.fast
    real = torch._fused_adam_
    calls = {"n": 0}

    def changed_schema(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the stepper's first direct call (the first step goes through torch.optim)
            raise TypeError("_fused_adam_() got an unexpected keyword argument")
        return real(*args, **kwargs)

    x = torch.randn(8, 4)
    for _ in range(4):
        ref_opt.zero_grad(set_to_none=True)
        reference(x).pow(2).sum().backward()
        ref_opt.step()
    monkeypatch.setattr(torch, "_fused_adam_", changed_schema)
    for _ in range(4):
        stepper.zero_grad()
        model(x).pow(2).sum().backward()
        stepper.step()
    assert calls["n"] >= 2
    assert not stepper.fast
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        assert torch.equal(ours, theirs)
    steps = [s["step"] for s in stepper.optimizer.state.values()]
    assert all(float(s) == 4 for s in steps)
