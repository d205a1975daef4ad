"""`nnstudio sweep` and `nnstudio cv`: Optuna studies and k-fold cross-validation, headless."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading


def _err(message: str, code: int = 2) -> int:
    print(f"nnstudio: {message}", file=sys.stderr)
    return code


def cmd_sweep(args: argparse.Namespace) -> int:
    from nnstudio.core.experiments import load_sweep
    from nnstudio.core.experiments.study import best_config, open_study, run_study

    sweep = load_sweep(args.config)
    if args.trials is not None:
        if args.trials < 1:
            return _err(f"--trials must be at least 1, got {args.trials}")
        sweep.trials = args.trials
    if args.jobs < 1:
        return _err(f"--jobs must be at least 1, got {args.jobs}")
    url = args.storage or sweep.storage_url()
    study = open_study(sweep, url, joining=args.worker)  # created once, before any worker joins
    stop = threading.Event()
    runs: list = []

    def on_signal(signum, frame):  # finish nothing half-way: the running trial stops and is marked failed
        stop.set()
        for run in runs[-1:]:
            run.trainer.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    workers = [subprocess.Popen([sys.executable, "-m", "nnstudio", "sweep", str(args.config), "--storage", url,
                                 "--trials", str(sweep.trials), "--worker"])
               for _ in range(args.jobs - 1)]

    def on_trial(o):
        if not args.json and not args.worker:
            value = "-" if o.value is None else f"{o.value:.4g}"
            print(f"trial {o.number}: {o.state} {sweep.metric} {value} ({o.epochs} epochs, {o.seconds:.1f} s)",
                  file=sys.stderr)

    try:
        run_study(sweep, sweep.trials, url, args.worker, stop, on_trial, runs.append)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for w in workers:
            if stop.is_set():
                w.terminate()
            w.wait()
    if args.worker:
        return 130 if stop.is_set() else 0
    # a trial another process asked for at the same instant as the last one was given back untrained: not a result
    trials = [t for t in study.get_trials(deepcopy=False) if "surplus" not in t.user_attrs]
    rows = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
             "seconds": (t.duration.total_seconds() if t.duration else None),
             "run_folder": t.user_attrs.get("run_folder")} for t in trials]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = study.best_trial if complete else None
    if args.best_config and best is not None:
        best_config(study, sweep).save(args.best_config)
    if args.json:
        print(json.dumps({"study": sweep.study, "storage": url, "metric": sweep.metric, "direction": sweep.direction,
                          "trials": rows, "best": None if best is None else
                          {"number": best.number, "value": best.value, "params": best.params,
                           "run_folder": best.user_attrs.get("run_folder")}}, default=str))
    else:
        names = [p.path for p in sweep.params]
        print("  ".join(["#", "state", sweep.metric, *names, "s"]))
        for r in rows:
            value = "-" if r["value"] is None else f"{r['value']:.4g}"
            params = [f"{r['params'].get(n, '-'):.4g}" if isinstance(r['params'].get(n), float)
                      else str(r['params'].get(n, "-")) for n in names]
            secs = "-" if r["seconds"] is None else f"{r['seconds']:.1f}"
            print("  ".join([str(r["number"]), r["state"], value, *params, secs]))
        if best is not None:
            print(f"best: trial {best.number} {sweep.metric} {best.value:.4g}: "
                  + ", ".join(f"{k} = {v!r}" for k, v in best.params.items()))
            if args.best_config:
                print(f"best config: {args.best_config}")
        print(f"storage: {url}  study: {sweep.study}")
    return 130 if stop.is_set() else 0


def cmd_cv(args: argparse.Namespace) -> int:
    from nnstudio.core.config import RunConfig
    from nnstudio.core.experiments.cv import cross_validate

    cfg = RunConfig.load(args.config)
    if args.epochs is not None:
        cfg.training.epochs = args.epochs
    cfg.output.checkpoint = ""

    def on_fold(f):
        if not args.json:
            m = "  ".join(f"{k} {v:.4g}" for k, v in f["metrics"].items())
            print(f"repeat {f['repeat']} fold {f['fold']} ({f['rows']} rows): {m}")

    result = cross_validate(cfg, args.folds, args.repeats, on_fold=on_fold)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        for k, v in result.mean.items():
            print(f"{k}: {v:.4g} ± {result.std[k]:.2g}")
        print(f"folds: {result.folds_file}")
    return 0


def add_parsers(sub) -> None:
    sweep = sub.add_parser("sweep", help="an Optuna hyperparameter sweep described by a run config's [sweep]")
    sweep.add_argument("config", help="the run config (.toml) with a [sweep] table")
    sweep.add_argument("--trials", type=int, help="override [sweep] trials (the study's total; a rerun continues)")
    sweep.add_argument("--jobs", type=int, default=1, help="processes on this machine (default 1)")
    sweep.add_argument("--storage", help="override [sweep] storage (any SQLAlchemy URL)")
    sweep.add_argument("--json", action="store_true", help="print one JSON object with the trials and the best")
    sweep.add_argument("--best-config", metavar="BEST.toml", help="write the best trial as a plain run config")
    sweep.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    sweep.set_defaults(func=cmd_sweep)
    cv = sub.add_parser("cv", help="stratified k-fold cross-validation of a run config (test split held out)")
    cv.add_argument("config", help="the run config (.toml)")
    cv.add_argument("--folds", type=int, required=True, help="number of folds (K)")
    cv.add_argument("--repeats", type=int, default=1, help="repeat with other shuffles (default 1)")
    cv.add_argument("--epochs", type=int, help="override [training] epochs")
    cv.add_argument("--json", action="store_true", help="print one JSON object with every fold and the summary")
    cv.set_defaults(func=cmd_cv)

