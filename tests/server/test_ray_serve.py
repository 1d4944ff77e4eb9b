"""The guarded server as Ray Serve replicas: a real local Ray cluster, the official client.

One module-scoped cluster (CPU only, 4 logical CPUs) serves one application with two
replicas; every replica builds its own guard on a ``ScriptedLM`` over the tiny random
model, so answers are exact and a truncated or duplicated one would show. The cost model
sleeps a little per call, so a request lasts long enough to kill its replica mid-run.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")
ray = pytest.importorskip("ray", reason="needs the [ray] extra: pip install 'inferenceguard[ray]'")
serve = pytest.importorskip("ray.serve")

from ray_replica_factories import CALL  # noqa: E402

from inferenceguard.server.ray_serve import REPLICA_HEADER, RayServeArgs, app  # noqa: E402

# Sockets stay enabled for this module, and may only connect to the loopback address.
pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

KEY = "s3cret"
HERE = Path(__file__).parent
FACTORIES = "ray_replica_factories"
USER = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants() -> set[int]:
    """Process ids below this one (Ray's raylet, GCS, workers...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{entry}/stat") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[str]:
    """A local Ray cluster serving two replicas; yields the base URL. Shuts down after.

    The app is built the way ``serve run inferenceguard.server.ray_serve:app k=v ...``
    builds it: text arguments, models named by ``module:function`` factories.
    """
    config = tmp_path_factory.mktemp("ray") / "guard.json"
    config.write_text(
        json.dumps({"n_candidates": 2, "n_beams": 1, "block_len": 4, "max_new_tokens": 96})
    )
    before = _descendants()
    path = os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    try:
        ray.init(
            num_cpus=4,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
        )
    except Exception as exc:  # no shared memory, no /tmp space, a sandbox...
        pytest.skip(f"Ray cannot start a local cluster here: {exc}")
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    application = app(
        {
            "model": f"{FACTORIES}:scripted_lm",
            "cost_model": f"{FACTORIES}:slow_zero_cost",
            "reward_model": f"{FACTORIES}:length_reward",
            "critic": "none",
            "config": str(config),
            "num_replicas": "2",
            "num_cpus": "1",
            "api_key": KEY,
        }
    )
    serve.run(application, name="guard", route_prefix="/")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()
        _wait_for(lambda: not (_descendants() - before), timeout=30)


def _wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


#: The name the replicas serve (the tiny model's id); another name is a 404, as on OpenAI.
SERVED = "tiny-random-llama"


def client(base: str, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, **kwargs)


def replica_of(response: Any) -> str:
    return response.headers[REPLICA_HEADER]


# --------------------------------------------------------------------------- the endpoint
def test_non_streaming_answers_come_from_both_replicas(cluster):
    raw = client(cluster).chat.completions.with_raw_response
    seen: set[str] = set()
    for _ in range(12):
        response = raw.create(model=SERVED, messages=USER)
        reply = response.parse()
        assert reply.choices[0].message.content == CALL  # no tools: the text stays text
        assert reply.choices[0].finish_reason == "stop"
        assert reply.safety["safe"] is True
        assert reply.safety["cost"] <= reply.safety["budget"]
        seen.add(replica_of(response))
        if len(seen) == 2:
            break
    assert len(seen) == 2, f"every request landed on {seen}"


def test_streaming_sends_the_whole_answer_once(cluster):
    raw = client(cluster).chat.completions.with_raw_response
    response = raw.create(
        model=SERVED, messages=USER, stream=True, stream_options={"include_usage": True}
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    assert replica_of(response)
    chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == CALL
    (last,) = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert last.choices[0].finish_reason == "stop"
    assert last.safety["safe"] is True
    assert chunks[-1].usage.completion_tokens > 0


def test_tool_calls(cluster):
    reply = client(cluster).chat.completions.create(
        model=SERVED, messages=USER, tools=[WEATHER_TOOL]
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city": "Paris"}'
    stream = client(cluster).chat.completions.create(
        model=SERVED, messages=USER, tools=[WEATHER_TOOL], stream=True
    )
    deltas = [c.choices[0].delta for c in stream if c.choices]
    assert all("<tool" not in (d.content or "") for d in deltas)
    assert [tc.function.name for d in deltas for tc in (d.tool_calls or []) if tc.function.name]


def test_same_authentication_and_error_bodies(cluster):
    no_key = httpx.post(f"{cluster}/v1/chat/completions", json={"messages": USER}, timeout=30)
    assert no_key.status_code == 401
    assert no_key.json()["error"]["code"] == "invalid_api_key"
    headers = {"Authorization": f"Bearer {KEY}"}
    bad = httpx.post(
        f"{cluster}/v1/chat/completions", json={"messages": []}, headers=headers, timeout=30
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{cluster}/health", timeout=30).json()["status"] == "ok"
    models = client(cluster).models.list()
    assert [m.id for m in models.data] == [SERVED]


# --------------------------------------------------------------------------- failures
def _replica_actor(tag: str) -> Any:
    (name,) = [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith("SERVE_REPLICA::") and a["name"].endswith(tag)
    ]
    return ray.get_actor(name, namespace="serve")


def _replaced(tag: str) -> bool:
    """Two replicas run again, and the one with ``tag`` is not among them."""
    status = serve.status().applications["guard"].deployments["InferenceGuard"]
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
    live = [n for n in names if n.startswith("SERVE_REPLICA::")]
    return status.replica_states.get("RUNNING", 0) == 2 and not any(n.endswith(tag) for n in live)


def test_a_killed_replica_is_replaced_and_no_answer_is_cut(cluster):
    """A stream whose replica dies ends in an error or whole, never short and "finished";
    a non-streamed request on a dying replica fails outright; Ray starts a new replica."""
    outcomes: list[str] = []
    started = threading.Event()

    def consume() -> None:
        raw = client(cluster, timeout=60).chat.completions.with_raw_response
        response = raw.create(model=SERVED, messages=USER, stream=True)
        tags.append(replica_of(response))
        text, finished = "", False
        try:
            for chunk in response.parse():
                started.set()
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                    finished = finished or chunk.choices[0].finish_reason is not None
        except (openai.APIError, httpx.HTTPError) as exc:
            outcomes.append(f"error: {type(exc).__name__}")
            return
        outcomes.append("whole" if finished and text == CALL else f"cut: {text!r}")

    def ask() -> None:
        try:
            reply = client(cluster, timeout=60).chat.completions.create(model=SERVED, messages=USER)
        except (openai.APIError, httpx.HTTPError) as exc:
            plain.append(f"error: {type(exc).__name__}")
            return
        text = reply.choices[0].message.content
        plain.append("whole" if text == CALL and reply.choices[0].finish_reason else "cut")

    tags: list[str] = []
    plain: list[str] = []
    thread = threading.Thread(target=consume)
    thread.start()
    assert started.wait(30)
    # Plain requests in flight too: those on the doomed replica must fail, not come short.
    askers = [threading.Thread(target=ask) for _ in range(4)]
    for asker in askers:
        asker.start()
    time.sleep(0.3)
    ray.kill(_replica_actor(tags[0]), no_restart=False)
    for worker in [thread, *askers]:
        worker.join(60)
    assert len(plain) == 4 and all(p == "whole" or p.startswith("error") for p in plain), plain
    (outcome,) = outcomes
    assert outcome == "whole" or outcome.startswith("error"), outcome
    _wait_for(lambda: _replaced(tags[0]), timeout=90)
    # The proxy learns of the new replica a moment after it runs: ask until it answers.
    raw = client(cluster).chat.completions.with_raw_response
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    while len(seen) < 2 and time.monotonic() < deadline:
        response = raw.create(model=SERVED, messages=USER)
        assert response.parse().choices[0].message.content == CALL
        seen.add(replica_of(response))
    assert tags[0] not in seen and len(seen) == 2, seen


# --------------------------------------------------------------------------- builders
def test_serve_run_arguments_are_validated():
    args = RayServeArgs.model_validate({"num_replicas": "3", "num_gpus": "1", "critic": "none"})
    assert (args.num_replicas, args.num_gpus, args.critic) == (3, 1.0, None)
    with pytest.raises(ValueError, match="num_replica"):
        RayServeArgs.model_validate({"num_replica": "3"})
    with pytest.raises(ValueError, match="max_concurrent"):
        RayServeArgs.model_validate({"max_concurrent": "0"})


def test_cli_serve_ray_deploys_replicas(monkeypatch, capsys):
    """``inferenceguard serve --ray --replicas 3``: the app, its replicas and their GPUs."""
    from inferenceguard.cli import main

    calls: dict[str, Any] = {}
    monkeypatch.setattr(ray, "init", lambda **kw: calls.update(init=kw))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0, "GPU": 4.0})
    monkeypatch.setattr(serve, "start", lambda **kw: calls.update(start=kw))
    monkeypatch.setattr(serve, "run", lambda application, **kw: calls.update(app=application, **kw))
    argv = ["serve", "--ray", "--replicas", "3", "--critic", "none", "--port", "8124"]
    assert main([*argv, "--api-key", "k", "--max-queue", "5"]) == 0
    deployment = calls["app"]._bound_deployment
    assert deployment.num_replicas == 3
    assert deployment.ray_actor_options["num_gpus"] == 1.0
    assert deployment.max_ongoing_requests == 4 + 5
    specs, server = deployment.init_args
    assert specs["critic"] is None and specs["model"] == "default"
    assert server == {"api_key": "k", "max_concurrent": 4, "max_queue": 5, "model_name": None}
    assert calls["start"]["http_options"] == {"host": "127.0.0.1", "port": 8124}
    assert calls["blocking"] is True and calls["init"] == {"address": None}
    assert "3 replica(s) (1 GPU each)" in capsys.readouterr().err
    assert main(["serve", "--replicas", "2"]) == 2
    assert "--replicas 2 needs --ray" in capsys.readouterr().err


# --------------------------------------------------------------------------- eval --ray
def test_eval_on_ray_gives_the_records_of_one_process(cluster, tmp_path, monkeypatch, capsys):
    """Two Ray tasks (on the same cluster) shard the prompts; the merged records equal a
    one-process run's, field for field, except timings and the rank that made each."""
    import inferenceguard
    from inferenceguard._distributed import resolve_factory
    from inferenceguard.cli import main

    prompts = tmp_path / "p.txt"
    prompts.write_text("Say hello.\nName a fruit.\nCount to three.\nPick a colour.\nHi.\n")
    argv = ["eval", "--prompts", str(prompts), "--strategy", "plain", "--strategy",
            "inferenceguard", "--max-new-tokens", "6", "--n-candidates", "4", "--critic",
            "none", "--model", f"{FACTORIES}:tiny_lm", "--cost-model",
            f"{FACTORIES}:letter_e_cost", "--reward-model", f"{FACTORIES}:length_reward",
            "--no-progress", "--no-plots", "--threads", "1"]  # fmt: skip
    assert main([*argv, "--ray", "--ray-workers", "2", "--out", str(tmp_path / "ray")]) == 0
    assert "| `plain` |" in capsys.readouterr().out
    build = inferenceguard.build_guard  # one process: the same factories, built here
    monkeypatch.setattr(
        inferenceguard,
        "build_guard",
        lambda **kw: build(**{k: resolve_factory(v) for k, v in kw.items()}),
    )
    assert main([*argv, "--out", str(tmp_path / "one")]) == 0

    def records(name: str) -> list[dict[str, Any]]:
        lines = (tmp_path / name / "records.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    sharded, single = records("ray"), records("one")
    assert {r["rank"] for r in sharded} == {0, 1}
    assert len(sharded) == len(single) == 10
    from inferenceguard.evaluation.runner import VOLATILE_FIELDS as timing  # timings, rank

    assert [{k: v for k, v in r.items() if k not in timing} for r in sharded] == [
        {k: v for k, v in r.items() if k not in timing} for r in single
    ]
