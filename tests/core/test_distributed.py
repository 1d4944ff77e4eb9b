"""_distributed.ResumableShards: per-rank record files, resume, shard and merge."""

from __future__ import annotations

from inferenceguard._distributed import ProcessInfo, ResumableShards


def test_two_ranks_share_the_work_and_rank_0_merges_in_the_run_order(tmp_path):
    ranks = [ResumableShards(tmp_path / "shards", ProcessInfo(r, 2)) for r in (0, 1)]
    items = [f"k{i}" for i in range(5)]
    assert ranks[0].mine(items) == ["k0", "k2", "k4"] and ranks[1].mine(items) == ["k1", "k3"]
    for shards in ranks:
        for key in reversed(shards.mine(items)):
            shards.append({"key": key, "rank": shards.info.rank})
    assert ranks[1].path.name == "records-rank1.jsonl"
    assert ranks[0].done_keys() == ranks[1].done_keys() == set(items)
    merged = ranks[0].merged(["k4", "k0", "k1", "k2", "k3"])
    assert [r["key"] for r in merged] == ["k4", "k0", "k1", "k2", "k3"]
    assert [r["key"] for r in ranks[0].merged(["k1"])] == ["k1"]  # other keys left out
    kept = ranks[1].merged(["k3", "k1"], keep_unlisted=True)  # then the rest, by key
    assert [r["key"] for r in kept] == ["k3", "k1", "k0", "k2", "k4"]


def test_a_resumed_run_keeps_the_first_record_and_skips_a_torn_line(tmp_path):
    shards = ResumableShards(
        tmp_path / "parts", ProcessInfo(0, 1), key="id", pattern="p{rank}.jsonl"
    )
    shards.append({"id": "a", "v": 1})
    with open(shards.path, "a", encoding="utf-8") as fh:
        fh.write('{"id": "b", "v"')  # a crash mid-write
    shards.append({"id": "a", "v": 2})  # a second run raced into the folder
    assert shards.done_keys() == {"a"}
    assert shards.merged(["a", "b"]) == [{"id": "a", "v": 1}]
    shards.clear()
    assert shards.done_keys() == set() and not shards.folder.exists()
