"""The packaged app: build the PyInstaller bundle and the .deb, install the .deb into a temporary root
with `dpkg-deb -x`, and run the installed launcher from another folder.

Slow (minutes: a build venv, PyInstaller over torch and Qt, compressing ~900 MB), so it runs only in CI
(CI=true) or when asked (NNSTUDIO_BUILD_BUNDLE=1). An existing build in packaging/dist/ is reused while
the files it was built from are unchanged; NNSTUDIO_REBUILD=1 forces a new one.

The build venv also gets pandas and pyarrow (the test extra; a dev or CI environment has them), so the
bundle test checks that the spec leaves them out even where PyInstaller could find them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "packaging" / "dist"
STAMP = DIST / "inputs.sha256"
MEASURES = DIST / "measurements.json"
# The CPU bundle stays under 900 MiB unpacked: 910 MiB with pandas + pyarrow before polars, 805 MiB
# now (packaging/SIZES.md). Tables moving to polars must not make it larger.
BUNDLE_BUDGET_BYTES = 900 << 20
# Test-only packages (~250 MB installed) the bundle must not carry: files under _internal, modules in
# the executable's archive. libarrow*/libparquet* are pyarrow's libraries wherever PyInstaller puts them.
TEST_ONLY = ("pandas", "pyarrow")
TEST_ONLY_FILE = re.compile(r"(^|/)(pandas|pyarrow)([.\-/]|$)|(^|/)lib(arrow|parquet)[^/]*\.so")
TEST_ONLY_MODULE = re.compile(r"^(pandas|pyarrow)(\.|$)")
# What a bundle is built from: the app, its resources, the packaging files and the dependency list.
INPUTS = ["nnstudio", "resources", "packaging/nnstudio.spec", "packaging/entry.py", "packaging/build", "pyproject.toml"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(3600),
    pytest.mark.skipif(
        os.environ.get("CI", "").lower() != "true" and os.environ.get("NNSTUDIO_BUILD_BUNDLE") != "1",
        reason="builds the packaged app (minutes): runs in CI or with NNSTUDIO_BUILD_BUNDLE=1",
    ),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the .deb is built on Linux"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed"),
]


def _version() -> str:
    text = (ROOT / "nnstudio" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "(.+)"', text, re.M)[1]


def _build_extras() -> str:
    """The test extra's pandas and pyarrow requirements, installed into the build venv."""
    import tomllib

    with (ROOT / "pyproject.toml").open("rb") as f:
        test_extra = tomllib.load(f)["project"]["optional-dependencies"]["test"]
    return " ".join(req for req in test_extra if re.match(r"(pandas|pyarrow)\b", req))


def _inputs_digest() -> str:
    digest = hashlib.sha256()
    digest.update(b"extras\0" + _build_extras().encode() + b"\0")
    for name in INPUTS:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _du_bytes(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _record(**values) -> None:
    data = json.loads(MEASURES.read_text()) if MEASURES.exists() else {}
    data.update(values)
    MEASURES.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _json_line(stdout: str) -> dict:
    """The last line of stdout that is a JSON object (the app may print other lines before it)."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON object in the output:\n{stdout[-2000:]}")


@pytest.fixture(scope="module")
def deb() -> Path:
    """The .deb in packaging/dist/, built now unless an up-to-date one is there."""
    version = _version()
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip() or "amd64"
    deb = DIST / f"nnstudio_{version}_{arch}.deb"
    digest = _inputs_digest()
    fresh = deb.exists() and STAMP.exists() and STAMP.read_text().strip() == digest
    if fresh and os.environ.get("NNSTUDIO_REBUILD") != "1":
        return deb
    DIST.mkdir(parents=True, exist_ok=True)
    STAMP.unlink(missing_ok=True)
    log = DIST / "build.log"
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run([str(ROOT / "packaging" / "build")], cwd=ROOT,
                              env={**os.environ, "NNSTUDIO_BUILD_EXTRAS": _build_extras()},
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-60:])
        pytest.fail(f"packaging/build failed (exit {proc.returncode}) after {seconds:.0f} s; "
                    f"last lines of {log}:\n{tail}")
    assert deb.exists(), f"packaging/build made no {deb.name}"
    STAMP.write_text(digest + "\n")
    _record(build_seconds=round(seconds, 1), deb_bytes=deb.stat().st_size)
    return deb


@pytest.fixture(scope="module")
def installed(deb: Path, tmp_path_factory) -> Path:
    """The .deb unpacked into a temporary root, as dpkg would lay it out."""
    root = tmp_path_factory.mktemp("deb-root")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def _app_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "QT_PLUGIN"))}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(home), XDG_RUNTIME_DIR=str(home))
    # No Python of ours on the path the frozen app could lean on.
    env["PATH"] = "/usr/bin:/bin"
    return env


def test_deb_metadata_and_layout(deb: Path, installed: Path):
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture"],
                            capture_output=True, text=True, check=True).stdout
    assert "Package: nnstudio" in fields
    assert f"Version: {_version()}" in fields
    launcher = installed / "usr" / "bin" / "nnstudio"
    assert launcher.is_symlink() and not os.path.isabs(os.readlink(launcher))
    assert launcher.resolve() == (installed / "opt" / "nnstudio" / "nnstudio").resolve()
    assert os.access(launcher, os.X_OK)
    assert (installed / "usr/share/applications/nnstudio.desktop").is_file()
    assert (installed / "usr/share/icons/hicolor/256x256/apps/nnstudio.png").is_file()
    assert (installed / "usr/share/icons/hicolor/scalable/apps/nnstudio.svg").is_file()
    internal = installed / "opt" / "nnstudio" / "_internal"
    assert (internal / "nnstudio" / "_resources" / "samples" / "flowers.csv").is_file()
    # Left out: headers, torch's C++ tests, Qt modules nnstudio does not use.
    assert not (internal / "torch" / "include").exists()
    assert not (internal / "torch" / "test").exists()
    assert not list(internal.glob("PySide6/QtNetwork*")) and not list(internal.glob("PySide6/QtQml*"))
    assert not list(internal.rglob("*.h"))


def test_tarball_holds_the_same_app(deb: Path):
    tarball = DIST / f"nnstudio-{_version()}-linux-{os.uname().machine}.tar.gz"
    assert tarball.is_file(), f"packaging/build made no {tarball.name}"
    _record(tarball_bytes=tarball.stat().st_size)
    names = subprocess.run(["tar", "-tzf", str(tarball)], capture_output=True, text=True, check=True).stdout.split()
    assert "nnstudio/nnstudio" in names
    assert "nnstudio/_internal/nnstudio/_resources/samples/flowers.csv" in names


def test_bundle_size_within_budget(installed: Path):
    size = _du_bytes(installed / "opt" / "nnstudio")
    _record(bundle_bytes=size)
    assert size < BUNDLE_BUDGET_BYTES, \
        f"the bundle is {size / 2**20:.0f} MiB, over the {BUNDLE_BUDGET_BYTES >> 20} MiB budget (packaging/SIZES.md)"


def test_bundle_leaves_out_pandas_and_pyarrow(installed: Path):
    """nnstudio's tables are polars frames; pandas and pyarrow are for the tests only."""
    app = installed / "opt" / "nnstudio"
    build_python = (DIST / "build-python").read_text().strip()
    probe = subprocess.run([build_python, "-c", "import pandas, pyarrow"], capture_output=True, text=True)
    assert probe.returncode == 0, f"the build venv {build_python} lacks pandas or pyarrow, so leaving them " \
                                  f"out proves nothing:\n{probe.stderr[-1000:]}"
    internal = app / "_internal"
    files = [p.relative_to(internal).as_posix() for p in internal.rglob("*")]
    bundled_files = sorted({name for name in files if TEST_ONLY_FILE.search(name)})
    listing = subprocess.run([build_python, "-m", "PyInstaller.utils.cliutils.archive_viewer", "-r", "-b",
                              str(app / "nnstudio")], capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0, listing.stderr[-2000:]
    entries = [line.strip() for line in listing.stdout.splitlines()]
    assert {"nnstudio.core.data", "polars"} <= set(entries), "no nnstudio or polars in the listing: format changed?"
    bundled_modules = sorted({name for name in entries if TEST_ONLY_MODULE.match(name)})
    assert not bundled_files and not bundled_modules, (
        f"the bundle carries {TEST_ONLY}: {bundled_files[:20]} {bundled_modules[:20]} "
        "(add them to EXCLUDES in packaging/nnstudio.spec, or find what imports them)")


def test_installed_launcher_reports_versions(installed: Path, tmp_path: Path):
    started = time.perf_counter()
    proc = subprocess.run([str(installed / "usr" / "bin" / "nnstudio"), "--version"], cwd=tmp_path,
                          env=_app_env(tmp_path), capture_output=True, text=True, timeout=300)
    _record(frozen_version_seconds=round(time.perf_counter() - started, 2))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.lower()
    assert _version() in text and "torch" in text and "qt" in text, proc.stdout


def test_installed_launcher_self_test_from_another_folder(installed: Path, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    started = time.perf_counter()
    proc = subprocess.run([str(installed / "usr" / "bin" / "nnstudio"), "--self-test"], cwd=elsewhere,
                          env=_app_env(tmp_path), capture_output=True, text=True, timeout=600)
    _record(frozen_self_test_seconds=round(time.perf_counter() - started, 2))
    summary = _json_line(proc.stdout)
    assert summary.get("ok") is True, f"self-test failed: {json.dumps(summary)}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, proc.stderr
    assert not list(elsewhere.iterdir()), "the self-test left files in the working folder"


def test_installed_launcher_serves_tensorboard(installed: Path, tmp_path: Path):
    """The window's "Open TensorBoard" runs `<frozen app> tensorboard ...`: the bundled server must start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logdir = tmp_path / "runs"
    logdir.mkdir()
    proc = subprocess.Popen([str(installed / "usr" / "bin" / "nnstudio"), "tensorboard", "--logdir", str(logdir),
                             "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path, env=_app_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugins_listing", timeout=5) as reply:
                    assert "scalars" in json.loads(reply.read())
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    except BaseException:
        proc.kill()
        pytest.fail(f"the bundled TensorBoard did not answer on port {port}:\n{proc.communicate()[0][-3000:]}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_desktop_file_is_valid(installed: Path):
    validate = shutil.which("desktop-file-validate")
    if validate is None:
        pytest.skip("desktop-file-validate is not installed (Debian: desktop-file-utils)")
    desktop = installed / "usr" / "share" / "applications" / "nnstudio.desktop"
    proc = subprocess.run([validate, str(desktop)], capture_output=True, text=True)
    assert proc.returncode == 0 and "error" not in proc.stdout.lower(), proc.stdout + proc.stderr
