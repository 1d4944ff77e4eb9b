"""One rule for "is this model source a local folder or a hub id?", for the LM and every scorer.

A source that exists on disk is local. A source written as a path (absolute, ``./``, ``../``
or ``~``) is local too, and missing it is reported as a missing folder, not as an invalid
hub repository id. Anything else (``org/name``) is a hub id.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelLoadError

__all__ = ["local_source", "looks_like_path"]

_PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")


def looks_like_path(source: str | os.PathLike[str]) -> bool:
    """True when ``source`` is written as a filesystem path rather than a hub id."""
    if isinstance(source, os.PathLike):
        return True
    return source.startswith(_PATH_PREFIXES) or (len(source) > 2 and source[1:3] in (":\\", ":/"))


def local_source(source: str | os.PathLike[str], *, what: str = "model") -> Path | None:
    """The local folder ``source`` names, or ``None`` for a hub id.

    Raises:
        ModelLoadError: ``source`` is written as a path but no such file or folder exists.
    """
    path = Path(source).expanduser()
    if path.exists():
        return path
    if looks_like_path(source):
        raise ModelLoadError(
            f"The {what} folder {str(source)!r} does not exist.",
            hint="check the path, or pass a hub id such as 'org/name'.",
        )
    return None
