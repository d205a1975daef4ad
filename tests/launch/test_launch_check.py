"""The launch check: missing system libraries named from ldd's output, one package list for all three uses."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nnstudio import launch_check
from nnstudio.cli import main
from nnstudio.launch_check import (EXIT_NO_WINDOW, check_ldd_output, deb_depends, install_command,
                                   missing_libraries, package_names, platform_would_be_xcb)

ROOT = Path(__file__).resolve().parents[2]

LDD_TWO_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd5a1f2000)
\tlibQt6XcbQpa.so.6 => /opt/nnstudio/_internal/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f0a1c000000)
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f0a1bf00000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f0a1be00000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-image.so.0 => /lib/x86_64-linux-gnu/libxcb-image.so.0 (0x00007f0a1bd00000)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-util.so.1 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f0a1bc00000)
\tlibxcb-icccm.so.4 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0a1b800000)
"""


def test_missing_libraries_are_exactly_the_not_found_lines_once_each():
    assert missing_libraries(LDD_TWO_MISSING) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-util.so.1"]
    assert missing_libraries(LDD_TWO_MISSING.replace("not found", "/lib/x.so (0x1)")) == []


def test_message_names_those_libraries_their_packages_and_the_install_command():
    problem = check_ldd_output(LDD_TWO_MISSING)
    assert problem is not None
    text = problem.message()
    named = set(re.findall(r"(lib[\w.+-]+\.so\.\d+) \(([\w.+-]+)\)", text))
    assert named == {("libxcb-icccm.so.4", "libxcb-icccm4"), ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
                     ("libxcb-util.so.1", "libxcb-util1")}
    assert install_command() in text
    assert "libxcb-cursor.so.0" not in text  # present, so not blamed as Qt's own message does
    assert check_ldd_output("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n") is None


def test_readme_deb_and_message_install_the_same_packages():
    packages = package_names()
    assert len(packages) == len(set(packages)) >= 20
    readme_lines = [line.strip() for line in (ROOT / "README.md").read_text().splitlines()
                    if line.strip().startswith("sudo apt-get install")]
    assert readme_lines == [install_command()]
    assert install_command().split()[4:] == packages
    deb = [alt.strip().split()[0] for alt in deb_depends().split(",")]
    assert deb == ["libc6", *packages]
    build = (ROOT / "packaging" / "build").read_text()
    assert "Depends: $deb_depends" in build
    assert 'deb_depends="$("$base_python" "$root/nnstudio/launch_check.py" --deb-depends)"' in build
    assert "libxcb-icccm4" not in build  # no second copy of the list
    script = subprocess.run([sys.executable, str(ROOT / "nnstudio" / "launch_check.py"), "--deb-depends"],
                            capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]})
    assert script.stdout.strip() == deb_depends()


def test_every_listed_library_maps_to_its_package():
    for package, sonames in launch_check.SYSTEM_PACKAGES:
        for soname in sonames:
            assert launch_check.package_of(soname) == package
    assert launch_check.package_of("libnothing.so.9") is None


@pytest.mark.parametrize(("env", "xcb"), [
    ({"DISPLAY": ":0"}, True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland"}, False),
    ({"WAYLAND_DISPLAY": "wayland-0"}, False),
    ({}, False),
])
def test_check_applies_only_where_qt_would_use_xcb(env, xcb):
    assert platform_would_be_xcb(env) is (xcb and sys.platform.startswith("linux"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="xcb is Linux's")
def test_window_start_prints_the_libraries_and_exits_non_zero(monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    asked = []
    monkeypatch.setattr(launch_check, "run_ldd", lambda path: asked.append(path) or LDD_TWO_MISSING)
    assert main([]) == EXIT_NO_WINDOW
    err = capsys.readouterr().err
    assert asked and asked[0].name == "libqxcb.so"
    assert "libxcb-icccm.so.4 (libxcb-icccm4)" in err and install_command() in err
    assert "could not load the Qt platform plugin" not in err.lower()


def _self_test(env: dict[str, str]) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "nnstudio", "--self-test"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_self_test_without_a_display_says_offscreen():
    code, summary = _self_test(_base_env())
    assert code == 0 and summary["ok"] is True, summary
    assert summary["display"].startswith("offscreen") and summary["checks"]["qt_platform"] == "offscreen"
    assert "window" not in summary["checks"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="an X display name")
def test_self_test_with_an_unreachable_display_fails(tmp_path):
    env = _base_env()
    env["DISPLAY"] = ":987"  # no server there
    code, summary = _self_test(env)
    assert code != 0 and summary["ok"] is False
    assert summary["display"].startswith("real") and summary["error"]


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb")
def test_self_test_opens_a_real_window_on_a_real_display():
    if launch_check.check_launch({"DISPLAY": ":0"}) is not None:
        pytest.skip("this machine lacks the xcb window's libraries (the launch check says which)")
    read, write = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1024x768x24"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            display = pipe.readline().strip()
        env = _base_env()
        env["DISPLAY"] = f":{display}"
        code, summary = _self_test(env)
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
    assert code == 0 and summary["ok"] is True, summary
    assert summary["checks"]["window"] == {"ok": True, "platform": "xcb"}
    assert summary["display"] == "real (xcb)"
