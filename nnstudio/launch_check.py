"""Can the Qt window open here? The one list of system packages the xcb window needs, and the check.

Qt's own message when its xcb platform plugin cannot load names one library (xcb-cursor0) whatever is
missing, and stays the same after that one is installed. Here the plugin's own dependencies are read with
``ldd`` before any QApplication exists, so the person is told every missing library and one command.

``SYSTEM_PACKAGES`` is the single list: the README's Quick start line, the ``.deb``'s Depends
(``packaging/build`` runs this file with ``--deb-depends``) and the launch message all come from it.
This module imports neither Qt nor torch at import time, so the build script can run it with any Python.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: Debian/Ubuntu packages the Qt xcb window needs, each with the libraries (sonames) it ships that
#: libqxcb.so links against directly or through Qt's own libraries.
SYSTEM_PACKAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("libgl1", ("libGL.so.1", "libGLX.so.0", "libGLdispatch.so.0")),
    ("libegl1", ("libEGL.so.1",)),
    ("libfontconfig1", ("libfontconfig.so.1",)),
    ("libfreetype6", ("libfreetype.so.6",)),
    ("libdbus-1-3", ("libdbus-1.so.3",)),
    ("libglib2.0-0", ("libglib-2.0.so.0", "libgthread-2.0.so.0")),
    ("libxkbcommon0", ("libxkbcommon.so.0",)),
    ("libxkbcommon-x11-0", ("libxkbcommon-x11.so.0",)),
    ("libx11-6", ("libX11.so.6",)),
    ("libx11-xcb1", ("libX11-xcb.so.1",)),
    ("libxcb1", ("libxcb.so.1",)),
    ("libxcb-cursor0", ("libxcb-cursor.so.0",)),
    ("libxcb-icccm4", ("libxcb-icccm.so.4",)),
    ("libxcb-image0", ("libxcb-image.so.0",)),
    ("libxcb-keysyms1", ("libxcb-keysyms.so.1",)),
    ("libxcb-randr0", ("libxcb-randr.so.0",)),
    ("libxcb-render-util0", ("libxcb-render-util.so.0",)),
    ("libxcb-shape0", ("libxcb-shape.so.0",)),
    ("libxcb-xfixes0", ("libxcb-xfixes.so.0",)),
    ("libxcb-xinerama0", ("libxcb-xinerama.so.0",)),
    ("libxcb-xkb1", ("libxcb-xkb.so.1",)),
)

#: Libraries that the packages above pull in as their own dependencies: named in the message when
#: missing; installing SYSTEM_PACKAGES installs them too.
INDIRECT_PACKAGES: dict[str, str] = {
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-render.so.0": "libxcb-render0",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libpng16.so.16": "libpng16-16",
    "libexpat.so.1": "libexpat1",
    "libzstd.so.1": "libzstd1",
    "libz.so.1": "zlib1g",
    "libpcre2-8.so.0": "libpcre2-8-0",
    "libbrotlidec.so.1": "libbrotli1",
}

#: How the .deb writes a package where Debian and Ubuntu name it differently (Ubuntu 24.04's t64 rename).
_DEB_ALTERNATIVES = {"libglib2.0-0": "libglib2.0-0 | libglib2.0-0t64"}

EXIT_NO_WINDOW = 3


def package_names() -> list[str]:
    return [name for name, _ in SYSTEM_PACKAGES]


def install_command() -> str:
    """The one line the README shows and the launch message prints."""
    return "sudo apt-get install -y " + " ".join(package_names())


def deb_depends() -> str:
    """The .deb control file's Depends value."""
    return ", ".join(["libc6 (>= 2.28)", *(_DEB_ALTERNATIVES.get(name, name) for name in package_names())])


def package_of(library: str) -> str | None:
    for name, sonames in SYSTEM_PACKAGES:
        if library in sonames:
            return name
    return INDIRECT_PACKAGES.get(library)


_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found\s*$")


def missing_libraries(ldd_output: str) -> list[str]:
    """The libraries ``ldd`` reports as "not found", each once, in the order ldd names them."""
    found: list[str] = []
    for line in ldd_output.splitlines():
        match = _NOT_FOUND.match(line)
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return found


@dataclass(frozen=True)
class LaunchProblem:
    """The window cannot open: these libraries are missing."""

    missing: tuple[str, ...]

    def message(self) -> str:
        named = ", ".join(f"{lib} ({package_of(lib) or 'package unknown'})" for lib in self.missing)
        return (
            f"nnstudio: error: the window cannot open: Qt's xcb platform plugin needs {named}, "
            f"not installed on this system.\n"
            f"On Debian or Ubuntu, install what the window needs with:\n"
            f"    {install_command()}\n"
            f"On other systems install your distribution's packages of these libraries; "
            f"the command line (nnstudio train, nnstudio info) works without them."
        )


def check_ldd_output(ldd_output: str) -> LaunchProblem | None:
    missing = missing_libraries(ldd_output)
    return LaunchProblem(tuple(missing)) if missing else None


def platform_would_be_xcb(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """Qt picks xcb on Linux when an X display is named and no other platform is asked for."""
    if not sys.platform.startswith("linux") or not environ.get("DISPLAY"):
        return False
    asked = environ.get("QT_QPA_PLATFORM", "")
    return asked == "" or asked.split(":")[0].split(";")[0] == "xcb"


def xcb_plugin_path() -> Path | None:
    """libqxcb.so of the PySide6 in use (imports only QtCore, which needs no display libraries)."""
    try:
        from PySide6.QtCore import QLibraryInfo
    except ImportError:
        return None
    plugin = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def run_ldd(path: Path) -> str | None:
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    try:
        done = subprocess.run([ldd, str(path)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def check_launch(environ: dict[str, str] | os._Environ = os.environ) -> LaunchProblem | None:
    """None when the window can try to open (or when the check does not apply or cannot run)."""
    if not platform_would_be_xcb(environ):
        return None
    plugin = xcb_plugin_path()
    if plugin is None:
        return None
    output = run_ldd(plugin)
    return check_ldd_output(output) if output else None


def _main(argv: list[str]) -> int:
    if argv == ["--deb-depends"]:
        print(deb_depends())
    elif argv == ["--packages"]:
        print(" ".join(package_names()))
    elif argv == ["--install-command"]:
        print(install_command())
    else:
        print("usage: launch_check.py --deb-depends | --packages | --install-command", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
