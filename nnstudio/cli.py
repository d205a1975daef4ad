"""The command line: `nnstudio [FILE]` opens the window; `train`, `info`, `--self-test`, `--version` run headless.

Bad input ends with one line naming the problem on stderr and a non-zero exit; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from nnstudio import __version__

EXIT_ERROR = 2
EXIT_DIVERGED = 3
#: `nnstudio predict`: one exit code per kind of bad input (see core.results.predict.KINDS).
EXIT_PREDICT = {"missing_columns": 4, "unparseable": 5, "unknown_category": 6}
EXIT_CHECKPOINT = 7
EXIT_DATA = 8


def _error(message: str, code: int = EXIT_ERROR) -> int:
    if "no such file" in message:
        from nnstudio.resources import missing_sample_hint

        message += missing_sample_hint(message)
    print(f"nnstudio: error: {message}", file=sys.stderr)
    return code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, like every other error
        self.exit(EXIT_ERROR, f"nnstudio: error: {message} (see nnstudio --help)\n")


def _installed_version(name: str) -> str | None:
    """A package's version from its metadata, without importing it (torch takes ~1 s to import);
    None where the package is missing. A frozen bundle without the metadata imports the package."""
    from importlib import import_module, metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
    try:
        return import_module(name).__version__
    except Exception:  # pragma: no cover - a broken install still reports what it can
        return None


def version_text() -> str:
    import platform

    parts = [f"nnstudio {__version__}", f"Python {platform.python_version()}"]
    torch_version = _installed_version("torch")
    parts.append(f"torch {torch_version}" if torch_version else "torch missing")
    try:
        from PySide6 import QtCore  # ~0.07 s, for the Qt library's own version

        parts.append(f"PySide6 {_installed_version('PySide6')} (Qt {QtCore.qVersion()})")
    except Exception:
        parts.append("PySide6 missing")
    return ", ".join(parts)


def cmd_train(args: argparse.Namespace) -> int:
    from nnstudio.core.training.callbacks import ProgressBar
    from nnstudio.core.config import RunConfig, check_training
    from nnstudio.core.errors import TrainingDiverged
    from nnstudio.core.run import TrainingRun

    cfg = RunConfig.load(args.config)
    if args.epochs is not None:
        cfg.training.epochs = args.epochs
    if args.device is not None:
        cfg.training.device = args.device
    check_training(cfg.training, cfg.source if args.epochs is None else f"{cfg.source} with --epochs {args.epochs}")
    progress = None if args.quiet else ProgressBar(sys.stderr)
    distributed = None
    watch = _overfit_watch(args.quiet)
    if _torchrun_launched():  # torchrun --nproc-per-node N -m nnstudio train RUN.toml
        from nnstudio.core import distributed

        if args.resume:
            return _error("--resume is not available under torchrun yet; resume on one process")
        try:
            ctx, run = distributed.prepare(cfg, [watch] if watch is not None and ctx_is_main() else [], progress)
        except distributed.PeerFailed:
            return EXIT_ERROR  # the process that read the data has said why
        stopper, execute, main_rank = run.trainer.strategy, distributed.execute, ctx.is_main
    else:
        resume, checkpoint_path = _resume_target(args, cfg)
        run = TrainingRun(cfg, callbacks=[c for c in (progress, watch) if c is not None], resume=resume,
                          checkpoint_path=checkpoint_path)
        stopper, execute, main_rank = run.trainer, TrainingRun.execute, True
    if not args.quiet and main_rank:
        print(_data_line(cfg.data_path.name, run.data.report), file=sys.stderr)
    stopped_by: list[int] = []

    def on_signal(signum, frame):  # the first SIGINT/SIGTERM stops after the current batch and saves
        stopped_by.append(signum)
        if signum == signal.SIGINT:  # a second Ctrl+C kills
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if main_rank:
            name = "Ctrl+C" if signum == signal.SIGINT else "SIGTERM"
            print(f"\n{name}: stopping after this batch and saving"
                  + (" (Ctrl+C again to abort)" if signum == signal.SIGINT else ""), file=sys.stderr)
        stopper.request_stop()

    # torchrun answers Ctrl+C by sending its workers SIGTERM: there, it stops the run the same way
    # (the checkpoint of what was trained is saved); torchrun kills what is left after its grace period.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = execute(run)
    except TrainingDiverged as exc:
        return _error(str(exc), EXIT_DIVERGED) if main_rank else EXIT_DIVERGED
    except Exception as exc:
        if distributed is not None and isinstance(exc, distributed.PeerFailed):
            return EXIT_ERROR  # the process that failed has said why; torchrun names it
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not main_rank:
        return 0
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
    return 128 + stopped_by[0] if stopped_by and distributed is None else 0


def _resume_target(args: argparse.Namespace, cfg):
    """`--resume CKPT`: the checkpoint to go on from, and where to save (CKPT itself unless the config's
    [output] checkpoint names a file)."""
    if not args.resume:
        return None, None
    import tomllib

    from nnstudio.core.model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(args.resume)
    try:
        named = "checkpoint" in tomllib.loads(Path(args.config).read_text(encoding="utf-8-sig")).get("output", {})
    except (OSError, ValueError):
        named = False
    return ckpt, (None if named else Path(args.resume))


def _data_line(name: str, r: dict) -> str:
    """One line on what became of the table's rows and columns (or the image files) before training."""
    if r.get("kind") == "image":
        return f"data: {name}: " + _image_line(r)
    parts = [f"{r.get('rows_read', 0):,} rows", f"{r.get('rows_dropped_no_target', 0):,} dropped without a target"]
    if r.get("missing_policy") == "drop":
        parts.append(f"{r.get('rows_dropped_missing', 0):,} dropped with missing values")
    if r.get("excluded"):
        parts.append("excluded: " + ", ".join(r["excluded"]))
    parts.append(f"{r.get('n_features', 0)} inputs")
    return f"data: {name}: " + "; ".join(parts)


def _image_line(r: dict) -> str:
    """An image dataset's counterpart of the table line: images kept and skipped, classes, H×W×C, split,
    how many were resized to the common size."""
    h, w = r.get("image_size") or (0, 0)
    line = (f"{r.get('rows_used', 0):,} images ({r.get('n_skipped', 0):,} skipped), {len(r.get('classes') or ())} "
            f"classes, {h}×{w}×{r.get('channels', 0)}, split {r.get('n_train', 0)}/{r.get('n_val', 0)}/"
            f"{r.get('n_test', 0)}")
    resized = r.get("resized", 0)
    line += f", {resized:,} resized to {h}×{w}" if resized else ", none resized"
    return line + (f"; {r['storage_note']}" if r.get("storage") == "stream" else "")


def cmd_lr_find(args: argparse.Namespace) -> int:
    from nnstudio.core.config import RunConfig, check_training
    from nnstudio.core.training.lr_find import find_lr
    from nnstudio.core.run import load_data, model_for

    cfg = RunConfig.load(args.config)
    if args.device is not None:
        cfg.training.device = args.device
    check_training(cfg.training, cfg.source)
    if not (0 < args.start_lr < args.end_lr):
        return _error(f"--start-lr ({args.start_lr:g}) must be above 0 and below --end-lr ({args.end_lr:g})")
    if args.steps < 10:
        return _error(f"--steps must be at least 10, got {args.steps}")
    data = load_data(cfg)
    model = model_for(cfg, data)
    result = find_lr(model, data, cfg.training, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(f"range test: {len(result.lrs)} steps of {result.optimizer}, lr {args.start_lr:g} to "
              f"{result.lrs[-1] if result.lrs else args.start_lr:.3g} ({result.status})")
        if result.suggestion is not None:
            print(f"suggested lr: {result.suggestion:.3g}  ({result.why})")
            print(f"use it: [training] optimizer = {{name = \"{result.optimizer}\", lr = {result.suggestion:.3g}}}")
        else:
            print(f"no suggestion: {result.why}")
    return 0 if result.suggestion is not None else 1


def _overfit_watch(quiet: bool):
    from nnstudio.core.training.health import OverfitWatch

    def warn(warning) -> None:
        print(f"\nwarning: {warning.message}", file=sys.stderr)

    def withdraw(warning, epoch: int) -> None:
        print(f"\nnote: the overfitting warning is withdrawn: the validation loss beat epoch {warning.best_epoch}'s "
              f"at epoch {epoch}", file=sys.stderr)

    return None if quiet else OverfitWatch(on_warning=warn, on_withdrawn=withdraw)


def ctx_is_main() -> bool:  # before the process group exists: torchrun's RANK
    import os

    return os.environ.get("RANK", "0") == "0"


def _torchrun_launched() -> bool:
    from nnstudio.core.distributed import launched

    return launched()


def cmd_info(args: argparse.Namespace) -> int:
    from nnstudio.core.model.checkpoint import describe, load_checkpoint
    from nnstudio.core.errors import CheckpointError, NNStudioError
    from nnstudio.core.files import file_failure

    try:
        if args.model_class:
            from nnstudio.core.model.user_class import open_with_class, parse_arguments

            py_path, _, class_name = args.model_class.rpartition(":")
            if not py_path or not class_name:
                raise CheckpointError(f"--model-class {args.model_class}: write it as FILE.py:ClassName")
            arguments = parse_arguments(args.args) if args.args is not None else None
            info = describe(open_with_class(args.file, py_path, class_name, arguments))
        else:
            info = describe(load_checkpoint(args.file))
    except NNStudioError:
        raise
    except Exception as exc:  # whatever else a hostile file provokes is still one line
        raise CheckpointError(file_failure(args.file, exc)) from exc
    if args.json:
        print(json.dumps(info, default=str))
        return 0
    print(f"{info['file']}  ({info['kind']})")
    if info["task"]:
        classes = f", classes {', '.join(info['classes'])}" if info["classes"] else ""
        print(f"task {info['task']}, target '{info['target']}'{classes}")
        if info.get("image"):
            im = info["image"]
            print(f"images {im['height']}×{im['width']}, {im['channels']} channel(s); normalised with mean "
                  + ", ".join(f"{v:.4f}" for v in im["mean"]) + ", std " + ", ".join(f"{v:.4f}" for v in im["std"]))
        else:
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


def cmd_follow(args: argparse.Namespace) -> int:
    folder = Path(args.logdir)
    if not folder.is_dir():
        return _error(f"{folder}: no such folder (give the run's TensorBoard log folder, its [output] logdir)")
    return gui_main(follow=str(folder))
def cmd_predict(args: argparse.Namespace) -> int:
    from nnstudio.core.model.checkpoint import load_checkpoint
    from nnstudio.core.errors import CheckpointError, DataError
    from nnstudio.core.results.predict import PredictionInputError, predict_file

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        return _error(f"--threshold {args.threshold:g} is not a probability between 0 and 1")
    try:
        ckpt = load_checkpoint(args.model)
        if ckpt.preprocessor is None:
            raise CheckpointError(f"{Path(args.model).name}: holds no preprocessing (a bare state_dict), so new rows "
                                  "cannot be encoded as in training; train it in nnstudio and save it again")
    except CheckpointError as exc:
        return _error(str(exc), EXIT_CHECKPOINT)
    out = Path(args.out) if args.out else Path(args.data).with_name(Path(args.data).stem + "-predictions.csv")
    if getattr(ckpt.preprocessor, "kind", None) == "image":
        return _predict_images(ckpt, Path(args.data), out, args.json)
    try:
        check, metrics, note = predict_file(ckpt, args.data, out, threshold=args.threshold)
    except PredictionInputError as exc:
        return _error(f"{Path(args.data).name}: {exc}", EXIT_PREDICT[exc.kind])
    except DataError as exc:
        return _error(str(exc), EXIT_DATA)
    for line in check.notes:
        print(f"note: {line}", file=sys.stderr)
    if note:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps({"predictions": str(out), "metrics": metrics, "ignored_columns": check.extra_columns,
                          "notes": check.notes}))
    else:
        print(f"predictions: {out}")
        if metrics:
            print("metrics: " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    return 0


def _predict_images(ckpt: Any, data: Path, out: Path, as_json: bool) -> int:
    from nnstudio.core.errors import DataError
    from nnstudio.core.results.predict import predict_image_file

    try:
        result = predict_image_file(ckpt, data, out)
    except DataError as exc:
        return _error(str(exc), EXIT_DATA)
    for line in result.skipped:
        print(f"note: skipped {line}", file=sys.stderr)
    if as_json:
        print(json.dumps({"predictions": str(out), "images": len(result.files), "metrics": result.metrics,
                          "skipped": result.skipped}))
    else:
        print(f"predictions: {out} ({len(result.files)} image(s))")
        if result.metrics:
            print("metrics: " + "  ".join(f"{k} {v:.4g}" for k, v in result.metrics.items()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """`nnstudio export RUN.toml|MODEL.pt --script train.py | --onnx m.onnx | --torchscript m.pt | --state-dict m.pt`."""
    wanted = [(fmt, dest) for fmt, dest in (("script", args.script), ("onnx", args.onnx),
                                             ("torchscript", args.torchscript), ("state_dict", args.state_dict)) if dest]
    if not wanted:
        return _error("export: say what to write: --script, --onnx, --torchscript or --state-dict")
    failed = False
    for fmt, dest in wanted:
        if fmt == "script":
            from nnstudio.core.export.codegen import export_script

            print(f"{export_script(args.source, dest)}: a standalone script (torch, numpy, polars, tensorboard)")
            continue
        if Path(args.source).suffix.lower() == ".toml":
            return _error(f"{args.source}: --{fmt.replace('_', '-')} exports a trained model; give its checkpoint (.pt)")
        from nnstudio.core.export.formats import export_checkpoint

        if fmt != "state_dict":  # tracing and checking the export takes seconds: say it is under way
            print(f"exporting {dest} as {'ONNX' if fmt == 'onnx' else 'TorchScript'}, then checking it on sample rows…",
                  file=sys.stderr, flush=True)
        report = export_checkpoint(args.source, dest, fmt)
        print(report.message())
        failed |= not report.ok
    return 1 if failed else 0


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
    lr_find = sub.add_parser("lr-find", help="a learning-rate range test on a run config; prints a proposal")
    lr_find.add_argument("config", help="the run config (.toml)")
    lr_find.add_argument("--json", action="store_true", help="print one JSON object (lrs, losses, suggestion)")
    lr_find.add_argument("--start-lr", type=float, default=1e-7)
    lr_find.add_argument("--end-lr", type=float, default=10.0)
    lr_find.add_argument("--steps", type=int, default=200)
    lr_find.add_argument("--device", help="override [training] device (auto, cpu, cuda:N, mps)")
    lr_find.set_defaults(func=cmd_lr_find)
    samples = sub.add_parser("samples", help="list the bundled sample tables (and the README's run config), "
                             "or copy them into a folder")
    samples.add_argument("--copy", metavar="DIR", help="copy them into DIR (made if absent); files already there "
                         "are kept")
    samples.set_defaults(func=cmd_samples)

    info = sub.add_parser("info", help="print what a checkpoint (.pt) holds")
    info.add_argument("file")
    info.add_argument("--json", action="store_true")
    info.add_argument("--model-class", metavar="FILE.py:CLASS",
                      help="build the model with your own nn.Module class (this RUNS that Python file)")
    info.add_argument("--args", metavar="NAME=VALUE,...", help="__init__ arguments for --model-class, e.g. 'n_in=8, n_out=3' "
                      "(default: the ones stored in the checkpoint)")
    info.set_defaults(func=cmd_info)
    follow = sub.add_parser("follow", help="open the window plotting a TensorBoard log folder live as it is written")
    follow.add_argument("logdir", help="a log folder (its newest run is followed) or one run's folder")
    follow.set_defaults(func=cmd_follow)
    predict = sub.add_parser("predict", help="apply a checkpoint to a table; write the rows with their predictions",
                             description="Exit codes: 4 missing columns, 5 values that cannot be parsed, 6 categories "
                             "never seen in training, 7 unusable checkpoint, 8 unreadable data file, 2 usage.")
    predict.add_argument("model", help="the checkpoint (.pt) saved by nnstudio")
    predict.add_argument("data", help="a table with the training columns (the target may be absent)")
    predict.add_argument("--out", "-o", help="the CSV to write (default: DATA-predictions.csv)")
    predict.add_argument("--threshold", type=float, help="binary tasks: the probability above which a row is the "
                         "second class (default: the checkpoint's saved threshold, else 0.5)")
    predict.add_argument("--json", action="store_true", help="print one JSON object with the results")
    predict.set_defaults(func=cmd_predict)
    export = sub.add_parser("export", help="write a run as a standalone script, or a model as ONNX/TorchScript/state_dict")
    export.add_argument("source", help="a run config (.toml) or a checkpoint (.pt)")
    export.add_argument("--script", metavar="TRAIN.py", help="the run as a Python script that needs no nnstudio")
    export.add_argument("--onnx", metavar="M.onnx", help="the model as ONNX, checked with onnxruntime")
    export.add_argument("--torchscript", metavar="M.pt", help="the model as TorchScript, checked by running it")
    export.add_argument("--state-dict", dest="state_dict", metavar="M.pt",
                        help="a plain nn.Sequential state_dict (keys 0.weight, ...) with a note of the layers")
    export.set_defaults(func=cmd_export)
    from nnstudio.cli_experiments import add_parsers

    add_parsers(sub)
    return parser


def cmd_samples(args: argparse.Namespace) -> int:
    from nnstudio.resources import SAMPLE_CONFIG, SAMPLES, copy_samples, sample_files, samples_dir

    if args.copy is None:
        texts = dict(SAMPLES) | {SAMPLE_CONFIG: "the README's run config (trains on penguins.csv beside it)"}
        print(f"bundled samples in {samples_dir()}:")
        for path in sample_files():
            print(f"  {path.name:<14} {texts.get(path.name, '')}")
        print("copy them here with: nnstudio samples --copy .")
        return 0
    try:
        copied, kept = copy_samples(args.copy)
    except OSError as exc:
        return _error(f"{args.copy}: cannot copy the samples there ({exc.strerror or exc})")
    for path in copied:
        print(f"copied {path}")
    for path in kept:
        print(f"kept {path}: already there, not overwritten", file=sys.stderr)
    if (Path(args.copy) / SAMPLE_CONFIG).exists():
        print(f"try: nnstudio train {Path(args.copy) / SAMPLE_CONFIG}")
    return 0


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    """The names `nnstudio NAME ...` runs headless; anything else opens the window."""
    return {name for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for name in action.choices}


def build_gui_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nnstudio", description="Build, train, inspect and save PyTorch networks. "
                     "Subcommands: train RUN.toml, info FILE.pt, predict MODEL.pt DATA, lr-find RUN.toml, export, follow LOGDIR, samples "
                     "(see nnstudio train --help).")
    parser.add_argument("file", nargs="?", help="a dataset, checkpoint (.pt) or project (.toml) to open")
    parser.add_argument("--version", action="store_true", help="print versions and exit")
    parser.add_argument("--self-test", action="store_true",
                        help="check the installation (a real window where a display is present) and exit")
    parser.add_argument("--self-test-window", action="store_true", help=argparse.SUPPRESS)
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
        parser = build_parser()
        if argv and argv[0] in subcommands(parser):
            args = parser.parse_args(argv)
            return args.func(args)
        args = build_gui_parser().parse_args(argv)
        if args.version:
            print(version_text())
            return 0
        if args.self_test_window:
            from nnstudio.selftest import run_window_check

            return run_window_check()
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


def gui_main(file: str | None = None, follow: str | None = None) -> int:
    from nnstudio.gui.app import run_app

    return run_app(file, follow=follow)
