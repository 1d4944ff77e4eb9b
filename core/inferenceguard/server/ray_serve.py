"""The OpenAI-compatible server as Ray Serve replicas behind one endpoint (``[ray]`` extra).

Each replica is one process that builds one guard (LM, cost model, reward model, critic,
loaded once, when the replica starts) and serves the very app of ``inferenceguard serve``
(:func:`~inferenceguard.server.app.create_app`, through Serve's FastAPI ingress): the same
routes, API key, error bodies, server-sent events and ``safety`` field. Ray's proxy spreads
requests over the replicas; every response names its replica in the
``x-inferenceguard-replica`` header.

Usage::

    # one command, Ray's convention (arguments are RayServeArgs fields)
    serve run inferenceguard.server.ray_serve:app num_replicas=2 num_gpus=1 config=guard.json

    # or the convenience: inferenceguard serve --ray --replicas 2

    # or from Python
    from ray import serve
    from inferenceguard.server.ray_serve import build_app
    serve.run(build_app(model="Qwen/Qwen2.5-1.5B-Instruct", num_replicas=4,
                        ray_actor_options={"num_gpus": 1}))

Retry semantics: a replica that dies (or is killed) mid-request never hands out part of an
answer as if it were whole. A non-streamed request fails with an error and no answer (an
HTTP 5xx from Ray's proxy, or a dropped connection); generation has no side effects, so
retrying it is safe (the ``openai`` client retries both twice by default) and Ray routes
the retry to a live replica while it starts a replacement. A stream whose replica dies is
cut before its ``finish_reason`` chunk and ``data: [DONE]``: the connection drops, which the ``openai`` client raises as
``APIConnectionError`` (tested), so no client mistakes a cut answer for a whole one. The
text it did receive was verified; the server neither resumes nor retries a stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import GuardConfig
from ..errors import ConfigError

try:
    from ray import serve
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    if exc.name != "ray":
        raise
    raise ModuleNotFoundError(
        "inferenceguard.server.ray_serve needs Ray Serve: pip install 'inferenceguard[ray]'",
        name="ray",
    ) from exc

if TYPE_CHECKING:
    from ray.serve import Application
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["REPLICA_HEADER", "GuardReplica", "RayServeArgs", "app", "build_app"]

#: Response header naming the replica that answered (its Serve replica tag).
REPLICA_HEADER = "x-inferenceguard-replica"

_SERVER_ARGS = ("api_key", "max_concurrent", "max_queue", "model_name", "max_body_bytes")


class _ReplicaHeader:
    """ASGI middleware: add :data:`REPLICA_HEADER` to every HTTP response."""

    def __init__(self, app: ASGIApp, replica: str) -> None:
        self.app = app
        self.value = replica.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REPLICA_HEADER.encode(), self.value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)


@serve.ingress()
class GuardReplica:
    """One Serve replica: one guard, built in the constructor, behind the server's app.

    Args:
        specs: the keyword arguments of :func:`~inferenceguard.build.build_guard` (strings
            are loaded by the replica; objects arrive pickled, one copy per replica).
        server: the keyword arguments of :func:`~inferenceguard.server.app.create_app`
            but the guard.
    """

    def __init__(self, specs: Mapping[str, Any], server: Mapping[str, Any]) -> None:
        from .._distributed import resolve_factory
        from ..build import LazyGuard

        self.replica = serve.get_replica_context().replica_tag
        self.lazy = LazyGuard(**{k: resolve_factory(v) for k, v in specs.items()})
        # Load now: Serve routes to a replica only once its constructor has returned, so
        # no request waits for (or times out on) model loading.
        self.lazy.get()
        self.server = dict(server)

    def __serve_build_asgi_app__(self) -> ASGIApp:
        """The app of ``inferenceguard serve`` around this replica's guard."""
        from .app import create_app

        return _ReplicaHeader(create_app(self.lazy, **self.server), self.replica)


def build_app(
    *,
    model: Any = None,
    cost_model: Any = "default",
    reward_model: Any = "default",
    critic: Any = "default",
    config: GuardConfig | None = None,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    num_replicas: int | None = 1,
    autoscaling_config: Mapping[str, Any] | None = None,
    ray_actor_options: Mapping[str, Any] | None = None,
    max_ongoing_requests: int | None = None,
    name: str = "InferenceGuard",
    **server: Any,
) -> Application:
    """A Serve application whose replicas each serve one guard over the OpenAI API.

    Args:
        model, cost_model, reward_model, critic, config, device, dtype, trust_remote_code:
            the guard, as :func:`~inferenceguard.build.build_guard` takes them. Hub ids and
            paths are resolved by each replica on its node (the embedded model's one-time
            conversion is safe when several replicas start together). A model spec may
            also be ``"package.module:function"``: each replica calls ``function()`` and
            uses what it returns (a :class:`~inferenceguard.LocalLM`, a cost model...);
            other objects must pickle (a ``LocalLM`` does not: use a factory).
        num_replicas: how many replicas (ignored when ``autoscaling_config`` is given).
        autoscaling_config: Serve's autoscaling settings instead of a fixed count, e.g.
            ``{"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 2}``.
        ray_actor_options: resources of each replica, e.g. ``{"num_gpus": 1}``.
        max_ongoing_requests: requests Serve sends one replica at once (default
            ``max_concurrent + max_queue``, so the replica's own admission queue answers
            429 with ``Retry-After`` exactly as ``inferenceguard serve`` does).
        name: the deployment's name.
        **server: ``api_key``, ``max_concurrent``, ``max_queue``, ``model_name``,
            ``max_body_bytes`` of :func:`~inferenceguard.server.app.create_app`.

    Raises:
        ConfigError: an unknown server option.
    """
    _check_server_args(server)
    specs: dict[str, Any] = {
        "model": model, "cost_model": cost_model, "reward_model": reward_model,
        "critic": critic, "config": config, "device": device, "dtype": dtype,
        "trust_remote_code": trust_remote_code,
    }  # fmt: skip
    options: dict[str, Any] = {
        "name": name,
        "ray_actor_options": dict(ray_actor_options or {}),
        "max_ongoing_requests": max_ongoing_requests
        or server.get("max_concurrent", 4) + server.get("max_queue", 32),
    }
    if autoscaling_config is not None:
        options["autoscaling_config"] = dict(autoscaling_config)
    else:
        options["num_replicas"] = num_replicas
    return serve.deployment(GuardReplica).options(**options).bind(specs, server)


def _check_server_args(server: Mapping[str, Any]) -> None:
    unknown = sorted(set(server) - set(_SERVER_ARGS))
    if unknown:
        raise ConfigError(
            f"build_app got unknown argument(s): {', '.join(unknown)}.",
            hint=f"server options are {', '.join(_SERVER_ARGS)}.",
        )


class RayServeArgs(BaseModel):
    """The arguments of ``serve run inferenceguard.server.ray_serve:app KEY=VALUE ...``.

    Every value may come as text from the command line; a Serve config file's ``args:``
    may also give ``autoscaling_config`` and ``ray_actor_options`` as mappings.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = Field(None, description="hub id or folder (default: embedded)")
    cost_model: str = Field("default", description="cost model spec")
    reward_model: str = Field("default", description="reward model spec")
    critic: str | None = Field("default", description="critic path, 'default' or 'none'")
    config: Path | None = Field(None, description="GuardConfig fields as JSON or YAML")
    device: str | None = None
    dtype: str | None = None
    trust_remote_code: bool = False
    api_key: str | None = Field(None, description="require 'Authorization: Bearer KEY'")
    max_concurrent: int = Field(4, ge=1, description="requests one replica runs at once")
    max_queue: int = Field(32, ge=0, description="requests that may wait per replica")
    model_name: str | None = None
    num_replicas: int = Field(1, ge=1)
    num_gpus: float = Field(0, ge=0, description="GPUs per replica")
    num_cpus: float = Field(1, ge=0, description="CPUs per replica")
    autoscaling_config: dict[str, Any] | None = None
    ray_actor_options: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _critic_none(self) -> RayServeArgs:
        if self.critic in {"none", "None", ""}:
            self.critic = None
        return self

    def build(self) -> Application:
        """The application these arguments describe."""
        from ..cli.serve import load_config

        actor = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        actor.update(self.ray_actor_options or {})
        return build_app(
            model=self.model, cost_model=self.cost_model, reward_model=self.reward_model,
            critic=self.critic, config=load_config(self.config), device=self.device,
            dtype=self.dtype, trust_remote_code=self.trust_remote_code,
            num_replicas=self.num_replicas, autoscaling_config=self.autoscaling_config,
            ray_actor_options=actor, api_key=self.api_key, max_concurrent=self.max_concurrent,
            max_queue=self.max_queue, model_name=self.model_name,
        )  # fmt: skip


def app(args: dict[str, Any]) -> Application:
    """Application builder for ``serve run inferenceguard.server.ray_serve:app KEY=VALUE``.

    Raises:
        pydantic.ValidationError: an unknown or invalid argument (see :class:`RayServeArgs`).
    """
    return RayServeArgs.model_validate(args).build()
