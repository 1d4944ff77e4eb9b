"""``inferenceguard serve``: run the OpenAI-compatible server (needs the ``server`` extra)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import GuardConfig
from ..errors import ConfigError
from ._common import add_model_args, add_parser, guard_from_args, model_specs

__all__ = ["load_config", "register", "run"]

EPILOG = """examples:
  inferenceguard serve                                   # embedded defaults on 127.0.0.1:8000
  inferenceguard serve --config guard.json --max-queue 16
  INFERENCEGUARD_API_KEY=s3cret inferenceguard serve --host 0.0.0.0 --port 8080
  inferenceguard serve --model ./my-llama --cost-model ./my-guard --critic none
  inferenceguard serve --ray --replicas 4 --host 0.0.0.0   # 4 replicas, one GPU each if any
  RAY_ADDRESS=auto inferenceguard serve --ray --replicas 8  # on a running Ray cluster

then, with any OpenAI client:
  curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
       -d '{"model": "x", "messages": [{"role": "user", "content": "Hi"}]}'

guard.json holds GuardConfig fields, e.g. {"n_candidates": 8, "max_new_tokens": 96}.
"""

_INSTALL_HINT = "pip install 'inferenceguard[server]'"
_RAY_HINT = "pip install 'inferenceguard[ray]'"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand."""
    p = add_parser(
        subparsers,
        "serve",
        help="OpenAI-compatible guarded server",
        description="Serve a guarded model over the OpenAI Chat Completions API.",
        epilog=EPILOG,
    )
    server = p.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="bind address")
    server.add_argument("--port", type=int, default=8000, help="port")
    server.add_argument(
        "--api-key",
        default=os.environ.get("INFERENCEGUARD_API_KEY"),
        help="require 'Authorization: Bearer KEY' (default: $INFERENCEGUARD_API_KEY, else none)",
    )
    server.add_argument(
        "--max-concurrent", type=_at_least(1), default=4, help="requests run at once"
    )
    server.add_argument(
        "--max-queue", type=_at_least(0), default=32, help="requests that may wait (then 429)"
    )
    server.add_argument(
        "--model-name", default=None, help="name reported by /v1/models (default: the model id)"
    )
    server.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="uvicorn log level",
    )
    _add_ray_args(p.add_argument_group("ray serve (replicas behind one endpoint)"))
    models = add_model_args(p)
    models.add_argument(
        "--config",
        type=Path,
        default=None,
        help="GuardConfig fields as JSON (or YAML) (default: GuardConfig's defaults)",
    )
    p.set_defaults(func=run)


def _add_ray_args(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--ray",
        action="store_true",
        help="serve replicas on Ray Serve (needs the ray extra) instead of one process",
    )
    group.add_argument(
        "--replicas", type=_at_least(1), default=1, help="replicas with --ray, one guard each"
    )
    group.add_argument(
        "--gpus-per-replica",
        type=float,
        default=None,
        help="GPUs each replica reserves (default: 1 if the Ray cluster has GPUs, else 0)",
    )
    group.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster to join, e.g. auto (default: $RAY_ADDRESS, else a local cluster)",
    )


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type`` for integers of at least ``low`` (checked before any loading)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in its messages
    return parse


def load_config(path: Path | None) -> GuardConfig:
    """A :class:`GuardConfig` from a JSON file (``.yaml``/``.yml`` with PyYAML installed).

    Raises:
        ConfigError: unreadable file, not a mapping, or invalid fields.
    """
    if path is None:
        return GuardConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read the config file {str(path)!r}: {exc}.") from None
    try:
        if path.suffix.lower() in {".yaml", ".yml"}:
            import yaml

            data: Any = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except ImportError:
        raise ConfigError(
            f"{str(path)!r} is YAML but PyYAML is not installed.",
            hint="pip install pyyaml, or write the config as JSON.",
        ) from None
    except ValueError as exc:  # JSONDecodeError and yaml.YAMLError's parse errors
        raise ConfigError(f"{str(path)!r} is not valid: {exc}.") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{str(path)!r} must hold a mapping of GuardConfig fields, got {type(data).__name__}."
        )
    return GuardConfig.from_dict(data)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    """Build the guard and serve it until interrupted."""
    try:
        import uvicorn

        from ..server.app import create_app
    except ModuleNotFoundError as exc:
        print(f"inferenceguard serve needs {exc.name}: {_INSTALL_HINT}", file=sys.stderr)
        return 1
    if args.ray:
        return _run_ray(args, load_config(args.config))
    if args.replicas > 1:
        raise ConfigError(
            f"--replicas {args.replicas} needs --ray.", hint="add --ray (pip install ray)."
        )
    guard = guard_from_args(args, load_config(args.config))
    _warn_if_exposed(args)
    app = create_app(
        guard,
        api_key=args.api_key,
        max_concurrent=args.max_concurrent,
        max_queue=args.max_queue,
        model_name=args.model_name,
    )
    print(
        f"inferenceguard: serving {guard!r} on http://{args.host}:{args.port}/v1", file=sys.stderr
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _warn_if_exposed(args: argparse.Namespace) -> None:
    if not _is_loopback(args.host) and not args.api_key:
        print(
            f"warning: serving on {args.host} without --api-key: anyone who can reach this "
            "address can use the model.",
            file=sys.stderr,
        )


def _run_ray(args: argparse.Namespace, config: GuardConfig) -> int:
    """``--ray``: the same app as replicas on Ray Serve, until interrupted."""
    try:
        import ray
        from ray import serve

        from ..server.ray_serve import build_app
    except ModuleNotFoundError as exc:
        print(f"inferenceguard serve --ray needs {exc.name}: {_RAY_HINT}", file=sys.stderr)
        return 1
    specs = model_specs(args)  # a missing local path fails here, before Ray starts
    _warn_if_exposed(args)
    ray.init(address=args.ray_address)
    gpus = args.gpus_per_replica
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) else 0.0
    application = build_app(
        **specs, config=config, num_replicas=args.replicas,
        ray_actor_options={"num_gpus": gpus}, api_key=args.api_key,
        max_concurrent=args.max_concurrent, max_queue=args.max_queue,
        model_name=args.model_name,
    )  # fmt: skip
    serve.start(http_options={"host": args.host, "port": args.port})
    print(
        f"inferenceguard: serving {args.replicas} replica(s) ({gpus:g} GPU each) on "
        f"http://{args.host}:{args.port}/v1",
        file=sys.stderr,
    )
    serve.run(application, name="inferenceguard", route_prefix="/", blocking=True)
    return 0
