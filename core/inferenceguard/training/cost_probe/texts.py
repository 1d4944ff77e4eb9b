"""The hand-written template texts of the cost-probe data set, read from ``templates/*.json``.

The texts are data, not code: ``responses.json`` (compliant and refusing answer
templates and their bodies), ``prompts.json`` (generic, group and scary-but-safe
prompts) and ``statements.json`` (group statements, abuse vs civil replies, neutral
replies). Each file's ``_comment`` key says what its placeholders mean. Editing a text
changes the built examples, and so the trained probe: retrain after any edit.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ...errors import ArtifactError

__all__ = ["TEMPLATE_DIR", "texts"]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def _frozen(value: Any) -> Any:
    # Read-only views: the sets are shared by every caller through the cache.
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    return value


@functools.cache
def texts(name: str) -> MappingProxyType[str, Any]:
    """The template sets of ``templates/<name>.json`` (tuples of strings, read-only).

    Raises:
        ArtifactError: the file is missing or is not valid JSON.
    """
    path = TEMPLATE_DIR / f"{name}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(
            f"The template file {path} is missing or unreadable ({exc}).",
            hint="reinstall inferenceguard, or restore the file from the repository.",
        ) from exc
    return _frozen({k: v for k, v in raw.items() if not k.startswith("_")})
