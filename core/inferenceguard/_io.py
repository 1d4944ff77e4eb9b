"""Files written so that a crash never leaves half of one behind, read back only when they
are what their metadata says, and where they live."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_text",
    "home_dir",
    "read_metadata_file",
    "read_verified_bytes",
    "sha256_file",
    "write_weights_and_metadata",
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


def read_metadata_file(
    path: str | os.PathLike,
    *,
    format: str,
    version: int,
    required: Sequence[str],
    what: str,
    hint: str,
) -> dict[str, Any]:
    """An artefact's JSON metadata, checked for its format, version and required fields.

    Args:
        path: the ``metadata.json`` file.
        format: the ``"format"`` value the artefact must declare.
        version: the one ``"format_version"`` this library reads.
        required: fields that must be present.
        what: names the artefact in messages ("embedding-probe").
        hint: how to get a good folder ("pass the folder written by ....save()").

    Raises:
        ArtifactError: missing, unreadable or truncated, of another format or version,
            or lacking a required field.
    """
    import json

    from ._version import __version__
    from .errors import ArtifactError

    path = Path(path)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(
            f"No {path.name} in {path.parent}: not a {what} folder.", hint=hint
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(
            f"{path} is unreadable or truncated ({exc}).",
            hint="restore the file or re-create the folder.",
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != format:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ArtifactError(f"{path} has format {got!r}, expected {format!r}.")
    if meta.get("format_version") != version:
        raise ArtifactError(
            f"{path} has format_version {meta.get('format_version')!r}; this library "
            f"(inferenceguard {__version__}) reads version {version}.",
            hint="upgrade inferenceguard or re-create the folder with this version.",
        )
    missing = [k for k in required if k not in meta]
    if missing:
        raise ArtifactError(f"{path} lacks the fields {missing}.")
    return meta


def write_weights_and_metadata(
    directory: str | os.PathLike, weights_file: str, blob: bytes, meta_file: str, meta: dict
) -> None:
    """Write an artefact's weights, then its JSON metadata, each atomically.

    Weights first: if the process dies between the two writes, the old metadata's
    sha256 no longer matches the new weights and loading refuses (see
    :func:`read_verified_bytes`), instead of silently mixing two training runs.
    """
    import json

    out = Path(directory)
    atomic_write_bytes(out / weights_file, blob)
    text = json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    atomic_write_bytes(out / meta_file, (text + "\n").encode("utf-8"))
