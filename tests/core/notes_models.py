"""Models written the way the course notes write them, and the checkpoint forms the notes (and PyTorch's tutorial) save."""

from __future__ import annotations

import torch
from torch import nn

NOTES_CLASS_SOURCE = '''
import torch
from torch import nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self, n_in, n_out, hidden=32):
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.batchnorm = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, 16)
        self.dropout = nn.Dropout(0.25)
        self.out = nn.Linear(16, n_out)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = self.batchnorm(x)
        x = torch.tanh(self.fc2(x))
        x = self.dropout(x)
        return self.out(x)
'''


class NotesNet(nn.Module):
    """fc1 → ReLU → batchnorm → fc2 → ReLU → dropout → out, with the parameter-free layers registered last."""

    def __init__(self, n_in: int = 6, n_out: int = 3):
        super().__init__()
        self.fc1 = nn.Linear(n_in, 32)
        self.batchnorm = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 16)
        self.out = nn.Linear(16, n_out)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.25)

    def forward(self, x):
        x = self.batchnorm(self.relu(self.fc1(x)))
        x = self.dropout(self.relu(self.fc2(x)))
        return self.out(x)


#: What a person answers in the dialog for NotesNet: fc1|bn, bn|fc2, fc2|out.
NOTES_ANSWERS = ["ReLU", "nothing", "ReLU + Dropout"]


def trained_notes_net(seed: int = 0) -> NotesNet:
    """A NotesNet with non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    net = NotesNet()
    net.train()
    with torch.no_grad():
        for _ in range(5):
            net(torch.randn(64, 6) * 3 + 1)
    return net.eval()


def forms(net: nn.Module) -> dict[str, object]:
    """Each way the notes and the tutorials save `net`."""
    state = net.state_dict()
    parallel = nn.DataParallel(net).state_dict()  # on CPU DataParallel only wraps: keys get `module.`
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    return {
        "bare": state,
        "module_prefix": parallel,
        "notes_dict": {"state_dict": state, "epoch": 12, "optimizer": optimizer.state_dict()},
        "notes_dict_module_prefix": {"state_dict": parallel, "epoch": 12},
        "tutorial_dict": {"epoch": 7, "model_state_dict": state, "optimizer_state_dict": optimizer.state_dict(),
                          "loss": 0.25},
    }


#: The notes' class whose checkpoint stores its __init__ arguments at the top level of the dict.
HPARAM_CLASS_SOURCE = '''
import torch
from torch import nn


class TabularNet(nn.Module):
    def __init__(self, input_size, hidden_size, dropout=0.5, n_classes=2):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.bn1 = nn.BatchNorm1d(hidden_size)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_size, n_classes)

    def forward(self, x):
        x = self.drop(torch.relu(self.bn1(self.fc1(x))))
        return self.fc2(x)
'''


def hparam_checkpoint(path, source_path) -> nn.Module:
    """Write the notes' dict `{"state_dict": sd, "input_size": 10, "hidden_size": 64, "dropout": 0.2, ...}` with
    torch.save, as the notes do; return the trained model (eval mode) it came from."""
    source_path.write_text(HPARAM_CLASS_SOURCE)
    namespace: dict = {}
    exec(compile(HPARAM_CLASS_SOURCE, str(source_path), "exec"), namespace)
    torch.manual_seed(1)
    net = namespace["TabularNet"](10, 64, 0.2, 3)
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(torch.randn(32, 10) * 2 + 0.5)
    net.eval()
    opt = torch.optim.Adam(net.parameters())
    torch.save({"state_dict": net.state_dict(), "input_size": 10, "hidden_size": 64, "dropout": 0.2,
                "n_classes": 3, "epoch": 12, "optimizer_state_dict": opt.state_dict()}, path)
    return net
