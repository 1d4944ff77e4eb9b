"""Files written so that a crash never leaves half of one behind, read back only when they
are what their metadata says, and where they live."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_text",
    "home_dir",
    "read_verified_bytes",
    "sha256_file",
]


def home_dir() -> Path:
    """``$INFERENCEGUARD_HOME`` (default ``~/.cache/inferenceguard``): converted models, caches."""
    return Path(os.environ.get("INFERENCEGUARD_HOME", Path.home() / ".cache" / "inferenceguard"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600 files; give the final file the usual umask-based mode.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp folder beside ``path``; on success it replaces ``path`` in one rename.

    If another process finished the same folder first, ours is discarded and theirs kept.
    On error the temp folder is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError:
            if not path.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_verified_bytes(path: str | os.PathLike, expected_sha256: str, what: str) -> bytes:
    """The bytes of ``path``, after checking their sha256 against ``expected_sha256``.

    The hash is taken of the very bytes returned, so a file swapped between the check and
    the parse cannot slip through.

    Args:
        path: the weights file.
        expected_sha256: what the artefact's metadata records.
        what: names the artefact in messages ("The probe weights").

    Raises:
        ArtifactError: the file is missing, or its bytes do not match (truncated, altered,
            or from another training run).
    """
    from .errors import ArtifactError

    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(
            f"{what} {path} are missing.", hint="restore the file or re-train."
        ) from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != expected_sha256:
        raise ArtifactError(
            f"{path} does not match its metadata: sha256 {digest[:16]}… but the metadata "
            f"records {str(expected_sha256)[:16]}… (truncated, altered, or from another "
            "training run).",
            hint="restore both files from the same training run.",
        )
    return blob
