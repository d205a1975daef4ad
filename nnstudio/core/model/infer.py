"""Rebuild a layer stack from a bare state_dict: an `nn.Sequential` or a course-notes `nn.Module`.

A state_dict holds only tensors, so three things cannot be read from it: the order in which a custom
module's layers run (its `forward`), the parameter-free layers (activations, Dropout) and a Dropout's rate.
The order is rebuilt by matching shapes (each Linear's input width is the previous one's output); every
order that fits is kept, so a caller can ask which one is meant. Each place where a parameter-free layer
may sit is an `Unknown`: the window asks for it, the command line says what it assumed.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import torch

from nnstudio.core.errors import CheckpointError

#: Keys under which other people's code stores the model's state_dict inside a dict.
STATE_KEYS = ("model_state_dict", "state_dict", "model_state", "model", "net", "network")
#: What an unknown place may hold, as the dialog and `nnstudio info` name it.
CHOICES = ("nothing", "ReLU", "ReLU + Dropout", "Dropout", "LeakyReLU", "GELU", "SiLU", "Tanh", "Sigmoid")
SINGLE_CHOICES = tuple(c for c in CHOICES if c not in ("nothing", "ReLU + Dropout"))
MAX_ORDERS = 24


@dataclass(frozen=True)
class Module:
    name: str  # the attribute path in the original model: "fc1", "net.3"
    type: str  # Linear, BatchNorm1d, LayerNorm
    in_features: int
    out_features: int
    params: dict[str, str]  # parameter name -> original key
    bias: bool = True


@dataclass
class Unknown:
    """A place where parameter-free layers may sit; `exactly_one` for a gap in an nn.Sequential's indices."""
    after: str  # module name it follows
    before: str
    exactly_one: bool
    default: str
    why: str = ""  # how the default was chosen, named with what was assumed

    @property
    def choices(self) -> tuple[str, ...]:
        return SINGLE_CHOICES if self.exactly_one else CHOICES

    def describe(self) -> str:
        what = "one parameter-free module" if self.exactly_one else "an activation and/or Dropout (or nothing)"
        return f"between {self.after} and {self.before}: {what}"


@dataclass
class InferredStack:
    """The modules in one order that fits the shapes, the unknown places between them, and the other orders."""
    modules: list[Module]
    unknowns: list[Unknown]
    orders: list[tuple[str, ...]]  # every order that fits, this one first
    sequential: bool
    notes: list[str] = field(default_factory=list)

    def with_order(self, order: tuple[str, ...]) -> "InferredStack":
        """The same layers read in another of the orders that fit."""
        if tuple(order) not in self.orders:
            raise ValueError(f"{order} is not one of the orders that fit the shapes")
        if tuple(order) == tuple(m.name for m in self.modules):
            return self  # the same order keeps its own places (a Sequential's gaps are not a custom module's)
        by_name = {m.name: m for m in self.modules}
        chosen = [by_name[n] for n in order]
        return InferredStack(chosen, _between_linears(chosen), [tuple(order), *[o for o in self.orders if o != tuple(order)]],
                             self.sequential, list(self.notes))

    @property
    def in_features(self) -> int:
        return self.modules[0].in_features

    @property
    def n_outputs(self) -> int:
        return next(m for m in reversed(self.modules) if m.type == "Linear").out_features

    @property
    def ambiguous(self) -> bool:
        return len(self.orders) > 1

    @property
    def needs_answers(self) -> bool:
        """True when a person should confirm something before the weights are used."""
        return self.ambiguous or bool(self.unknowns)

    def default_answers(self) -> list[str]:
        """What is proposed for each unknown place: the command line assumes it, the window's dialog offers it."""
        return [u.default for u in self.unknowns]

    def build(self, answers: list[str] | None = None, dropout_p: float = 0.5) -> tuple[list[dict[str, Any]], dict[str, str], list[str]]:
        """(layers, our key -> their key, what was assumed) for the given answers (defaults when None)."""
        assumed = answers is None
        answers = self.default_answers() if answers is None else list(answers)
        if len(answers) != len(self.unknowns):
            raise ValueError(f"{len(self.unknowns)} answers expected, got {len(answers)}")
        by_after: dict[str, list[tuple[Unknown, str]]] = {}
        for u, a in zip(self.unknowns, answers):
            by_after.setdefault(u.after, []).append((u, a))
        layers: list[dict[str, Any]] = []
        key_map: dict[str, str] = {}
        notes = list(self.notes)
        last_linear = max(i for i, m in enumerate(self.modules) if m.type == "Linear")
        for i, module in enumerate(self.modules):
            pos = len(layers)
            if module.type == "Linear":
                out = "auto" if i == last_linear else module.out_features
                layers.append({"type": "Linear", "out_features": out, "bias": module.bias})
            else:
                layers.append({"type": module.type})
            for param, orig in module.params.items():
                key_map[f"layers.{pos}.{param}"] = orig
            for unknown, answer in by_after.get(module.name, []):
                if answer not in unknown.choices:
                    raise ValueError(f"{answer!r} is not one of {', '.join(unknown.choices)}")
                layers.extend(_answer_layers(answer, dropout_p))
                if assumed:
                    why = f"; {unknown.why}" if unknown.why and answer == unknown.default else ""
                    notes.append(f"assumed {answer} {unknown.describe()} (a state_dict does not store it{why})")
        if self.ambiguous:
            others = len(self.orders) - 1
            notes.append(f"assumed the order {', '.join(self.orders[0])}; {others} other order(s) fit the shapes too")
        notes.append("a state_dict stores no activation after the last layer and no Dropout rate; "
                     "check them in the builder")
        return layers, key_map, notes


def _answer_layers(answer: str, p: float) -> list[dict[str, Any]]:
    if answer == "nothing":
        return []
    if answer == "ReLU + Dropout":
        return [{"type": "ReLU"}, {"type": "Dropout", "p": p}]
    if answer == "Dropout":
        return [{"type": "Dropout", "p": p}]
    return [{"type": answer}]


def unwrap_state_dict(obj: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The state_dict inside a checkpoint dict (tutorial `model_state_dict`, notes `state_dict`), and its key."""
    if obj and all(isinstance(k, str) for k in obj) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, None
    for key in STATE_KEYS:
        inner = obj.get(key)
        if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()) \
                and all(isinstance(k, str) for k in inner):
            return inner, key
    return None, None


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, str]:
    """Our names (without DataParallel's `module.` or a single wrapper attribute) -> the original keys."""
    names = {k: k for k in state}
    while names and all(n.startswith("module.") for n in names):
        names = {n[len("module."):]: k for n, k in names.items()}
    return names


def _modules(state: dict[str, torch.Tensor]) -> list[Module]:
    groups: dict[str, dict[str, str]] = {}
    for name, orig in _strip_prefix(state).items():
        owner, _, param = name.rpartition(".")
        if not owner:
            raise CheckpointError(f"key '{orig}' is a parameter of the top module itself; only layers "
                                  "(Linear, BatchNorm1d, LayerNorm) can be inferred")
        groups.setdefault(owner, {})[param] = orig
    modules = []
    for owner, params in groups.items():
        weight = state[params["weight"]] if "weight" in params else None
        bias = state[params["bias"]] if "bias" in params else None
        if "running_mean" in params:
            width = state[params["running_mean"]].numel()
            if weight is None:
                raise CheckpointError(f"'{owner}' is a BatchNorm without affine weights; only the default "
                                      "BatchNorm1d(affine=True) can be rebuilt")
            kind = "BatchNorm1d"
        elif weight is None:
            raise CheckpointError(f"'{owner}' has no weight ({', '.join(params)}); cannot tell what layer it is")
        elif weight.numel() == 0:
            raise CheckpointError(f"'{params['weight']}' is empty (shape {tuple(weight.shape)}); a layer needs at "
                                  "least one input and one output")
        elif weight.ndim == 2:
            out_f, in_f = (int(s) for s in weight.shape)
            if bias is not None and tuple(bias.shape) != (out_f,):
                raise CheckpointError(f"'{owner}.bias' has shape {tuple(bias.shape)}, expected ({out_f},) for "
                                      f"a Linear of {out_f} outputs")
            modules.append(Module(owner, "Linear", in_f, out_f, params, bias is not None))
            continue
        elif weight.ndim == 1:
            width = weight.numel()
            kind = "LayerNorm"
        else:
            raise CheckpointError(f"'{owner}' has a {weight.ndim}-D weight {tuple(weight.shape)}; only Linear, "
                                  "BatchNorm1d and LayerNorm can be inferred (File → Open model class from a Python "
                                  "file… opens other models)")
        for param, orig in params.items():
            t = state[orig]
            if param in ("weight", "bias", "running_mean", "running_var") and tuple(t.shape) != (width,):
                raise CheckpointError(f"'{orig}' has shape {tuple(t.shape)}, expected ({width},)")
        if kind == "LayerNorm" and set(params) != {"weight", "bias"}:
            raise CheckpointError(f"'{owner}' ({', '.join(params)}) is not a LayerNorm with weight and bias")
        modules.append(Module(owner, kind, int(width), int(width), params))
    if not any(m.type == "Linear" for m in modules):
        raise CheckpointError("no Linear layer found in the state_dict")
    return modules


def _sequential_index(modules: list[Module]) -> dict[str, int] | None:
    """Index of each module when all are children of one nn.Sequential (`3`, `net.3`), else None."""
    found = {}
    prefixes = set()
    for m in modules:
        match = re.fullmatch(r"(?:(.*)\.)?(\d+)", m.name)
        if not match:
            return None
        prefixes.add(match.group(1) or "")
        found[m.name] = int(match.group(2))
    return found if len(prefixes) == 1 else None


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def infer_stack(state: dict[str, torch.Tensor]) -> InferredStack:
    """Every order of the state_dict's layers that fits the shapes; raise CheckpointError when none does."""
    modules = _modules(state)
    index = _sequential_index(modules)
    if index is not None:
        return _sequential(modules, index)
    return _custom(modules)


def _sequential(modules: list[Module], index: dict[str, int]) -> InferredStack:
    ordered = sorted(modules, key=lambda m: index[m.name])
    width = None
    unknowns: list[Unknown] = []
    activated = False  # one activation per hidden block (from one Linear to the next)
    for prev, m in zip([None, *ordered], ordered):
        if width is not None and m.in_features != width:
            raise CheckpointError(f"{m.name} ({m.type}) expects {m.in_features} inputs but the layer before it "
                                  f"({prev.name}) gives {width}")
        if prev is not None:
            for _ in range(index[m.name] - index[prev.name] - 1):
                if activated:
                    unknowns.append(Unknown(prev.name, m.name, True, "Dropout",
                                            "its block already has an activation, so this place is taken as "
                                            "Dropout (identity when predicting)"))
                else:
                    unknowns.append(Unknown(prev.name, m.name, True, "ReLU",
                                            "the first free place after a Linear holds the block's activation"))
                    activated = True
        if m.type == "Linear":
            width = m.out_features
            activated = False
    return InferredStack(ordered, unknowns, [tuple(m.name for m in ordered)], True)


def _custom(modules: list[Module]) -> InferredStack:
    registration = {m.name: i for i, m in enumerate(modules)}
    linears = [m for m in modules if m.type == "Linear"]
    norms = [m for m in modules if m.type != "Linear"]
    chains = _chains(linears)
    if not chains:
        widths = ", ".join(f"{m.name} {m.in_features}→{m.out_features}" for m in linears)
        raise CheckpointError(f"its Linear layers ({widths}) do not chain into one stack (each layer's inputs "
                              "must be the previous layer's outputs); open it with File → Open model class from "
                              "a Python file…")
    orders: list[tuple[str, ...]] = []
    for chain in chains:
        for placed in _place_norms(chain, norms):
            orders.append(placed)
            if len(orders) > MAX_ORDERS:
                break
    if not orders:
        names = ", ".join(f"{n.name} ({n.in_features})" for n in norms)
        raise CheckpointError(f"no Linear layer gives the width of {names}; cannot place the normalisation")
    orders = _rank(orders, registration)
    by_name = {m.name: m for m in modules}
    chosen = [by_name[n] for n in orders[0]]
    unknowns = _between_linears(chosen)
    notes: list[str] = []
    if len(orders) > MAX_ORDERS:
        orders = orders[:MAX_ORDERS]
        notes.append(f"more than {MAX_ORDERS} orders fit the shapes; only the first {MAX_ORDERS} are offered")
    return InferredStack(chosen, unknowns, orders, False, notes)


def _chains(linears: list[Module]) -> list[list[Module]]:
    """Every ordering of all the Linear layers in which widths chain (depth-first, capped)."""
    found: list[list[Module]] = []

    def walk(chain: list[Module], rest: list[Module]) -> None:
        if len(found) > MAX_ORDERS:
            return
        if not rest:
            found.append(chain)
            return
        for i, m in enumerate(rest):
            if not chain or m.in_features == chain[-1].out_features:
                walk(chain + [m], rest[:i] + rest[i + 1:])

    walk([], linears)
    return found


def _place_norms(chain: list[Module], norms: list[Module]):
    """Each way of putting every norm right after a Linear of its width (several norms after one keep their order)."""
    options = []
    for norm in norms:
        spots = [i for i, m in enumerate(chain[:-1]) if m.out_features == norm.in_features]
        if not spots:
            spots = [i for i, m in enumerate(chain) if m.out_features == norm.in_features]
        if not spots:
            return
        options.append(spots)
    for spots in itertools.islice(itertools.product(*options), MAX_ORDERS + 1):
        order: list[str] = []
        for i, m in enumerate(chain):
            order.append(m.name)
            order.extend(n.name for n, s in zip(norms, spots) if s == i)
        yield tuple(order)


def _rank(orders: list[tuple[str, ...]], registration: dict[str, int]) -> list[tuple[str, ...]]:
    """The order closest to how the layers were registered in __init__ (then by their names) comes first."""
    def inversions(order: tuple[str, ...]) -> tuple[int, int]:
        pos = [registration[n] for n in order]
        by_name = sorted(order, key=_natural)
        rank = {n: i for i, n in enumerate(by_name)}
        inv = sum(1 for a, b in itertools.combinations(pos, 2) if a > b)
        name_inv = sum(1 for a, b in itertools.combinations([rank[n] for n in order], 2) if a > b)
        return inv, name_inv

    return sorted(dict.fromkeys(orders), key=inversions)


def _between_linears(chosen: list[Module]) -> list[Unknown]:
    """In a custom module, an activation and/or Dropout may sit between any two layers (forward is not stored)."""
    return [Unknown(m.name, nxt.name, False, "ReLU" if nxt.type == "Linear" else "nothing")
            for m, nxt in zip(chosen, chosen[1:])]
