"""An OpenAI-compatible HTTP server for a guarded model (``pip install 'inferenceguard[server]'``).

Any OpenAI client, LangChain's ``ChatOpenAI`` or LlamaIndex's ``OpenAILike`` can talk to
it; every answer is verified within the cost model's budget, and each response carries
the :class:`~inferenceguard.SafetyReport` in an extra ``safety`` field.

Usage::

    inferenceguard serve --port 8000                      # embedded defaults, 127.0.0.1

    from inferenceguard.server import create_app          # or build the app yourself
    app = create_app(guard, api_key="s3cret", max_queue=16)

Importing this package does not import FastAPI; :func:`create_app` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .queue import AdmissionQueue, QueueFullError

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["AdmissionQueue", "QueueFullError", "create_app"]

_INSTALL_HINT = "pip install 'inferenceguard[server]'"


def __getattr__(name: str) -> Any:
    if name == "create_app":
        try:
            from .app import create_app
        except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
            if exc.name in {"fastapi", "starlette", "anyio"}:
                raise ModuleNotFoundError(
                    f"The server needs {exc.name}: {_INSTALL_HINT}", name=exc.name
                ) from exc
            raise
        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
