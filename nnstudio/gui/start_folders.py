"""Where file dialogs start: the user's documents (else home), never the installed package's sample folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths


def start_folder() -> str:
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    if documents and Path(documents).is_dir():
        return documents
    return str(Path.home())


def is_bundled(folder: str | Path) -> bool:
    """Inside nnstudio's own resources (the samples): a folder to open from, never one to start a dialog in."""
    from nnstudio.resources import resources_dir

    try:
        return Path(folder).resolve().is_relative_to(resources_dir().resolve())
    except (OSError, FileNotFoundError):
        return False
