"""The SQLite outbox on real files: seq, group commit, ack, limits, a full disk, reopening."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import orjson

from edge_agent.config import BufferConfig
from edge_agent.outbox import Outbox
from edge_agent.reading import Reading
from tests.helpers import wait_until


def make(tmp_path: Path, **overrides: object) -> Outbox:
    config = BufferConfig.model_validate({"path": str(tmp_path / "buffer.db"), **overrides})
    box = Outbox(config, gateway="gw")
    box.start()
    return box


def readings(device: str, n: int, start: int = 0, ts: float | None = None) -> list[Reading]:
    return [Reading(device, "counter", i, ts=ts) for i in range(start, start + n)]


def all_rows(box: Outbox) -> list[dict[str, object]]:
    conn = box.reader()
    try:
        chunks = Outbox.fetch(conn, 0, limit=10_000)
    finally:
        conn.close()
    out: list[dict[str, object]] = []
    for chunk in chunks:
        out.extend(orjson.loads(b"[" + chunk.payload + b"]"))
    return out


def test_group_commit_assigns_contiguous_seq_per_device_chunk(tmp_path: Path) -> None:
    box = make(tmp_path)
    box.put_many(readings("a", 3) + readings("b", 2) + readings("a", 2, start=3))
    assert box.flush(5)
    rows = all_rows(box)
    box.close()
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert [(r["device"], r["value"]) for r in rows] == [
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("a", 3),
        ("a", 4),
        ("b", 0),
        ("b", 1),
    ]
    assert rows[0]["id"] == "gw:1"


def test_seq_continues_after_reopen_even_when_empty(tmp_path: Path) -> None:
    box = make(tmp_path)
    box.put_many(readings("a", 10))
    assert box.flush(5)
    conn = box.reader()
    ids = [c.id for c in Outbox.fetch(conn, 0)]
    conn.close()
    box.ack(ids)
    assert box.flush(5)
    assert box.depth == 0
    box.close()
    box = make(tmp_path)
    box.put_many(readings("a", 1))
    assert box.flush(5)
    assert [r["seq"] for r in all_rows(box)] == [11]
    box.close()


def test_ack_removes_only_acknowledged_rows(tmp_path: Path) -> None:
    box = make(tmp_path)
    box.put_many(readings("a", 5))
    assert box.flush(5)
    box.put_many(readings("b", 5))
    assert box.flush(5)
    conn = box.reader()
    first, _ = Outbox.fetch(conn, 0)
    conn.close()
    box.ack([first.id])
    assert box.flush(5)
    assert box.depth == 5
    assert {r["device"] for r in all_rows(box)} == {"b"}
    assert box.stats.acked == 5
    box.close()


def test_max_age_drops_old_readings(tmp_path: Path) -> None:
    box = make(tmp_path, max_age="1s")
    box.put_many(readings("old", 4, ts=time.time() - 60) + readings("new", 3))
    wait_until(lambda: box.stats.dropped_age == 4, 10, what="max_age housekeeping")
    assert box.depth == 3
    box.close()


def test_full_disk_keeps_readings_in_memory_and_commits_when_space_returns(tmp_path: Path) -> None:
    box = make(tmp_path)
    assert box._db is not None
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count={pages}")  # SQLite now fails as on a full disk
    big = [Reading("a", "blob", "x" * 2000) for _ in range(200)]
    box.put_many(big)
    wait_until(lambda: box.stats.commit_errors >= 2, 10, what="commit failing with SQLITE_FULL")
    assert box.stats.accepted == 0 and box.depth == 200  # held, not lost
    box._db.execute("PRAGMA max_page_count=1073741823")
    wait_until(lambda: box.stats.accepted == 200, 10, what="commit after space returned")
    assert [r["seq"] for r in all_rows(box)] == list(range(1, 201))
    box.close()


def test_database_survives_reopen_with_integrity(tmp_path: Path) -> None:
    box = make(tmp_path, synchronous="full")
    for i in range(20):
        box.put_many(readings("a", 100, start=i * 100))
    assert box.flush(5)
    box.close()
    conn = sqlite3.connect(tmp_path / "buffer.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT SUM(count) FROM chunks").fetchone()[0] == 2000
    conn.close()
