"""The command line: `nnstudio [FILE]` opens the window; `train`, `info`, `--self-test`, `--version` run headless.

Bad input ends with one line naming the problem on stderr and a non-zero exit; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Sequence

from nnstudio import __version__

EXIT_ERROR = 2
EXIT_DIVERGED = 3


def _error(message: str, code: int = EXIT_ERROR) -> int:
    print(f"nnstudio: error: {message}", file=sys.stderr)
    return code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, like every other error
        self.exit(EXIT_ERROR, f"nnstudio: error: {message} (see nnstudio --help)\n")


def version_text() -> str:
    import platform

    parts = [f"nnstudio {__version__}", f"Python {platform.python_version()}"]
    try:
        import torch

        parts.append(f"torch {torch.__version__}")
    except Exception:  # pragma: no cover - a broken install still reports what it can
        parts.append("torch missing")
    try:
        import PySide6
        from PySide6 import QtCore

        parts.append(f"PySide6 {PySide6.__version__} (Qt {QtCore.qVersion()})")
    except Exception:
        parts.append("PySide6 missing")
    return ", ".join(parts)


def cmd_train(args: argparse.Namespace) -> int:
    from nnstudio.core.callbacks import ProgressBar
    from nnstudio.core.config import RunConfig
    from nnstudio.core.errors import TrainingDiverged
    from nnstudio.core.run import TrainingRun

    cfg = RunConfig.load(args.config)
    if args.epochs is not None:
        cfg.training.epochs = args.epochs
    if args.device is not None:
        cfg.training.device = args.device
    cfg.training.validate()
    callbacks = [] if args.quiet else [ProgressBar(sys.stderr)]
    resume, checkpoint_path = _resume_target(args, cfg)
    run = TrainingRun(cfg, callbacks=callbacks, resume=resume, checkpoint_path=checkpoint_path)
    stopped_by: list[int] = []

    def on_signal(signum, frame):  # the first SIGINT/SIGTERM stops after the current batch and saves
        stopped_by.append(signum)
        if signum == signal.SIGINT:  # a second Ctrl+C kills
            signal.signal(signal.SIGINT, signal.default_int_handler)
        name = "Ctrl+C" if signum == signal.SIGINT else "SIGTERM"
        print(f"\n{name}: stopping after this batch and saving" +
              (" (Ctrl+C again to abort)" if signum == signal.SIGINT else ""), file=sys.stderr)
        run.trainer.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = run.execute()
    except TrainingDiverged as exc:
        return _error(str(exc), EXIT_DIVERGED)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for note in result.notes:
        print(f"nnstudio: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_json(), default=str))
    else:
        test = "  ".join(f"{k} {v:.4g}" for k, v in result.test.items())
        print(f"test: {test}")
        if result.checkpoint:
            print(f"checkpoint: {result.checkpoint}")
        if result.run_dir:
            print(f"tensorboard: tensorboard --logdir {result.run_dir.parent}")
    return 128 + stopped_by[0] if stopped_by else 0


def _resume_target(args: argparse.Namespace, cfg):
    """`--resume CKPT`: the checkpoint to go on from, and where to save (CKPT itself unless the config's
    [output] checkpoint names a file)."""
    if not args.resume:
        return None, None
    import tomllib

    from nnstudio.core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(args.resume)
    try:
        named = "checkpoint" in tomllib.loads(Path(args.config).read_text(encoding="utf-8-sig")).get("output", {})
    except (OSError, ValueError):
        named = False
    return ckpt, (None if named else Path(args.resume))


def cmd_info(args: argparse.Namespace) -> int:
    from nnstudio.core.checkpoint import describe, load_checkpoint

    info = describe(load_checkpoint(args.file))
    if args.json:
        print(json.dumps(info, default=str))
        return 0
    print(f"{info['file']}  ({info['kind']})")
    if info["task"]:
        classes = f", classes {', '.join(info['classes'])}" if info["classes"] else ""
        print(f"task {info['task']}, target '{info['target']}'{classes}")
        print(f"features ({info['in_features']} inputs after encoding): {', '.join(info['features'])}")
    print("layers:")
    for layer in info["layers"]:
        settings = ", ".join(f"{k}={v}" for k, v in layer.items() if k not in ("index", "type", "output", "params"))
        print(f"  {layer['index']:>2}  {layer['type']:<12} {settings:<34} {layer['output']:<10} {layer['params']:>10,} params")
    print(f"total parameters: {info['parameters']:,}")
    if info["epoch"]:
        print(f"trained epochs: {info['epoch']}")
    if info["metrics"]:
        print("metrics: " + "  ".join(f"{k} {v:.4g}" for k, v in info["metrics"].items() if isinstance(v, float)))
    if info["versions"]:
        print("saved with: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    for note in info["notes"]:
        print(f"note: {note}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nnstudio", description="Build, train, inspect and save PyTorch networks.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    train = sub.add_parser("train", help="run a training run described by a TOML config, headless")
    train.add_argument("config", help="the run config (.toml)")
    train.add_argument("--json", action="store_true", help="print one JSON object with the results")
    train.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    train.add_argument("--epochs", type=int, help="override [training] epochs")
    train.add_argument("--device", help="override [training] device (auto, cpu, cuda:N, mps)")
    train.add_argument("--resume", metavar="CKPT.pt", help="go on from a checkpoint (model, optimizer, RNGs, "
                       "history); --epochs, or the config's, counts the further epochs")
    train.set_defaults(func=cmd_train)
    info = sub.add_parser("info", help="print what a checkpoint (.pt) holds")
    info.add_argument("file")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_info)
    return parser


def build_gui_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nnstudio", description="Build, train, inspect and save PyTorch networks. "
                     "Subcommands: train RUN.toml, info FILE.pt (see nnstudio train --help).")
    parser.add_argument("file", nargs="?", help="a dataset, checkpoint (.pt) or project (.toml) to open")
    parser.add_argument("--version", action="store_true", help="print versions and exit")
    parser.add_argument("--self-test", action="store_true", help="check the installation headless and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from nnstudio.core.errors import NNStudioError

    if argv and argv[0] == "tensorboard":  # lets the frozen app start TensorBoard with its own interpreter
        from tensorboard import main as tensorboard_main

        sys.argv = ["tensorboard", *argv[1:]]
        tensorboard_main.run_main()
        return 0
    try:
        if argv and argv[0] in ("train", "info"):
            args = build_parser().parse_args(argv)
            return args.func(args)
        args = build_gui_parser().parse_args(argv)
        if args.version:
            print(version_text())
            return 0
        if args.self_test:
            from nnstudio.selftest import run_self_test

            summary = run_self_test()
            print(json.dumps(summary))
            return 0 if summary["ok"] else 1
        if args.file and not Path(args.file).exists():
            return _error(f"{args.file}: no such file")
        return gui_main(args.file)
    except NNStudioError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        return _error("interrupted", 130)
    except OSError as exc:
        return _error(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


def gui_main(file: str | None = None) -> int:
    from nnstudio.gui.app import run_app

    return run_app(file)
