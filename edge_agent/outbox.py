"""The durable outbox: readings wait here, in SQLite (WAL), until the broker acknowledged them.

Drivers append to an in-memory staging queue; one writer thread commits whatever piled up in one
transaction (no fixed linger: it commits at once when idle), assigns each reading its `seq` and
stores the readings already encoded, one row per device chunk. SQLite's cost is thus paid per
chunk, not per reading. The forwarder reads rows oldest first on its own connection and hands
acknowledged row ids back; the writer deletes them in its next transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.config import BufferConfig
from edge_agent.reading import Reading, ReadingEncoder

__all__ = ["Chunk", "Outbox", "OutboxStats"]

log = logging.getLogger("edge_agent.outbox")

SCHEMA_VERSION = 1
CHUNK_READINGS = 500  # readings per stored row at most: keeps one row well under a message
MAX_COMMIT_READINGS = 50_000
MAX_STAGED = 50_000  # staging bound (~25 MB of readings); producers wait beyond it (backpressure)
ACK_DELAY = 0.05  # acknowledged rows are deleted within this long, or with the next commit
ACK_BATCH = 256  # ... or as soon as this many wait


@dataclass(frozen=True, slots=True)
class Chunk:
    """One stored row: consecutive readings of one device (seq first..last)."""

    id: int
    device: str
    first_seq: int
    last_seq: int
    count: int
    first_ts: float
    payload: bytes


@dataclass
class OutboxStats:
    accepted: int = 0  # readings committed
    dropped_oldest: int = 0  # committed readings removed to stay under max_size
    dropped_age: int = 0  # committed readings removed by max_age
    rejected: int = 0  # readings refused by reject_new (never committed, no seq)
    acked: int = 0  # readings removed after the broker's acknowledgement
    commits: int = 0
    commit_errors: int = 0
    per_device: dict[str, int] = field(default_factory=dict)  # readings committed
    dropped_per_device: dict[str, int] = field(default_factory=dict)  # dropped or rejected, any reason


class Outbox:
    def __init__(self, config: BufferConfig, *, gateway: str) -> None:
        self.config = config
        self.encoder = ReadingEncoder(gateway)
        self.stats = OutboxStats()
        self.committed = threading.Event()  # set after each commit that added rows (forwarder waits on it)
        self._staged: deque[Reading] = deque()
        self._acks: deque[int] = deque()
        self._wake = threading.Event()
        self._space = threading.Event()
        self._space.set()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self._next_seq = 1
        self._bytes = 0
        self._rows = 0
        self._readings = 0
        self._full_episode = False
        self._busy = False
        self.heartbeat = time.monotonic()  # the writer's last turn, for the watchdog
        self._error_episode: str | None = None
        self._last_housekeeping = 0.0

    # -- lifecycle --------------------------------------------------------------------------
    def open(self) -> None:
        """Open (or create) the database and recover seq and size from what it holds."""
        path = Path(self.config.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        # Plain sqlite3 here: sqlite-utils costs ~27 MB of RSS at import, a lot on a 1 GB gateway
        # (it remains the tool for inspecting a buffer by hand: `sqlite-utils rows buffer.db chunks`).
        new = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='chunks'").fetchone() is None
        if new:
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # must precede the first table
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.config.synchronous.upper()}")
        conn.execute("PRAGMA journal_size_limit=16777216")
        conn.execute("PRAGMA foreign_keys=OFF")
        if new:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS chunks ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL,"
                " first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, count INTEGER NOT NULL,"
                " first_ts REAL NOT NULL, last_ts REAL NOT NULL, bytes INTEGER NOT NULL,"
                " payload BLOB NOT NULL)"
            )
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)")
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if version is None or int(version[0]) != SCHEMA_VERSION:
            raise RuntimeError(f"{path}: outbox schema version {version and version[0]} is not {SCHEMA_VERSION}")
        last_meta = conn.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
        rows, readings, size, last_row = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(count),0), COALESCE(SUM(bytes),0), COALESCE(MAX(last_seq),0) FROM chunks"
        ).fetchone()
        self._next_seq = max(int(last_meta[0]) if last_meta else 0, int(last_row)) + 1
        self._rows, self._readings, self._bytes = int(rows), int(readings), int(size)
        self._db = conn
        if readings:
            log.info(
                "Outbox %s holds %d readings (%d bytes) from before; next seq %d", path, readings, size, self._next_seq
            )

    def start(self) -> None:
        if self._db is None:
            self.open()
        self._thread = threading.Thread(target=self._writer, name="outbox-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Commit everything staged, then close. Safe to call twice."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._db is not None:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()
            self._db = None

    def flush(self, timeout: float) -> bool:
        """Wait until everything staged and every ack is committed; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._staged or self._acks or self._busy:
            if time.monotonic() >= deadline or self._thread is None:
                return False
            self._wake.set()
            time.sleep(0.005)
        return True

    def reader(self) -> sqlite3.Connection:
        """A read-only connection for the forwarder's thread (WAL readers never block the writer)."""
        return sqlite3.connect(
            f"file:{self.config.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )

    # -- producers (any thread) -------------------------------------------------------------
    def put_many(self, readings: Iterable[Reading]) -> None:
        staged = self._staged
        staged.extend(readings)
        if not self._wake.is_set():
            self._wake.set()
        if len(staged) > MAX_STAGED and not self._closing:
            self._space.clear()
            while len(staged) > MAX_STAGED and not self._closing:
                self._space.wait(0.1)

    def ack(self, chunk_ids: Iterable[int]) -> None:
        """Rows whose message the broker acknowledged; deleted in the writer's next commit."""
        self._acks.extend(chunk_ids)
        if len(self._acks) >= ACK_BATCH:
            self._wake.set()

    # -- consumers (forwarder thread) -------------------------------------------------------
    @staticmethod
    def fetch(conn: sqlite3.Connection, after_id: int, limit: int = 256) -> list[Chunk]:
        rows = conn.execute(
            "SELECT id, device, first_seq, last_seq, count, first_ts, payload FROM chunks"
            " WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        return [Chunk(*row) for row in rows]

    @property
    def depth(self) -> int:
        """Readings held (committed, not yet acknowledged) plus those staged."""
        return self._readings + len(self._staged)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def oldest_ts(self) -> float | None:
        if self._db is None:
            return None
        conn = sqlite3.connect(f"file:{self.config.path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT first_ts FROM chunks ORDER BY id LIMIT 1").fetchone()
        finally:
            conn.close()
        return float(row[0]) if row else None

    # -- the writer -------------------------------------------------------------------------
    def _writer(self) -> None:
        staged, acks = self._staged, self._acks
        backoff = 0.05
        interval = self.config.commit_interval
        last_commit = 0.0
        while True:
            # Acks may wait a little (a crash before their delete only means a resend) so that
            # deletes share a transaction with the next inserts instead of costing one of their own.
            self.heartbeat = time.monotonic()
            self._wake.wait(ACK_DELAY if acks else 1.0)
            # Commits are at least `interval` apart: readings that arrive meanwhile share the next
            # one. When idle the pause is zero, so a lone reading is committed at once.
            pause = last_commit + interval - time.monotonic()
            if pause > 0 and not self._closing:
                time.sleep(pause)
            self._wake.clear()
            self._busy = True
            n = min(len(staged), MAX_COMMIT_READINGS)
            batch = [staged.popleft() for _ in range(n)]
            if len(staged) <= MAX_STAGED:
                self._space.set()
            ack_ids = [acks.popleft() for _ in range(len(acks))]
            if batch or ack_ids:
                try:
                    self._commit(batch, ack_ids)
                except sqlite3.Error as err:
                    # Keep what we hold; retry. Nothing accepted is dropped on a failed commit.
                    staged.extendleft(reversed(batch))
                    acks.extendleft(reversed(ack_ids))
                    self.stats.commit_errors += 1
                    if self._error_episode != str(err):
                        log.error(
                            "Outbox commit to %s failed: %s; holding %d readings in memory and retrying",
                            self.config.path,
                            err,
                            len(staged),
                        )
                        self._error_episode = str(err)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    self._wake.set()
                    if self._closing and backoff >= 2.0:
                        log.error("Outbox closing with %d readings not committed: %s", len(staged), err)
                        return
                    continue
                last_commit = time.monotonic()
                if self._bytes > self.config.max_size and self.config.when_full == "drop_oldest":
                    try:
                        self._drop_oldest()
                    except sqlite3.Error as err:
                        log.error("Outbox could not drop oldest readings: %s", err)
                if self._error_episode is not None:
                    log.warning("Outbox commits to %s work again", self.config.path)
                    self._error_episode = None
                backoff = 0.05
                if staged or acks:
                    self._wake.set()
            now = time.monotonic()
            if now - self._last_housekeeping >= 1.0:
                self._last_housekeeping = now
                try:
                    self._housekeeping()
                except sqlite3.Error as err:
                    log.warning("Outbox housekeeping failed: %s", err)
            self._busy = False
            if self._closing and not staged and not acks:
                return

    def _commit(self, batch: list[Reading], ack_ids: list[int]) -> None:
        assert self._db is not None
        conn = self._db
        rows: list[tuple[object, ...]] = []
        seq = self._next_seq
        rejected = 0
        if batch and self.config.when_full == "reject_new" and self._bytes >= self.config.max_size:
            rejected = len(batch)
            self._count_dropped((r.device, 1) for r in batch)
            batch = []
        if batch:
            by_device: dict[str, list[Reading]] = {}
            for r in batch:
                group = by_device.get(r.device)
                if group is None:
                    by_device[r.device] = group = []
                group.append(r)
            encode = self.encoder.encode
            for device, readings in by_device.items():
                for start in range(0, len(readings), CHUNK_READINGS):
                    part = readings[start : start + CHUNK_READINGS]
                    payload = encode(seq, part)
                    rows.append(
                        (device, seq, seq + len(part) - 1, len(part), part[0].ts, part[-1].ts, len(payload), payload)
                    )
                    seq += len(part)
        freed_rows = freed_readings = freed_bytes = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            if rows:
                conn.executemany(
                    "INSERT INTO chunks (device, first_seq, last_seq, count, first_ts, last_ts, bytes, payload)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    rows,
                )
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_seq', ?)", (seq - 1,))
            for chunk_id in ack_ids:
                gone = conn.execute("DELETE FROM chunks WHERE id = ? RETURNING count, bytes", (chunk_id,)).fetchone()
                if gone:
                    freed_rows += 1
                    freed_readings += gone[0]
                    freed_bytes += gone[1]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        # Only now, after COMMIT, does the in-memory state move on.
        added_bytes = sum(int(r[6]) for r in rows)  # type: ignore[call-overload]
        self._next_seq = seq
        self._rows += len(rows) - freed_rows
        self._readings += len(batch) - freed_readings
        self._bytes += added_bytes - freed_bytes
        stats = self.stats
        stats.commits += 1
        stats.acked += freed_readings
        stats.accepted += len(batch)
        if batch:
            per_device = stats.per_device
            for device_rows in rows:
                device = str(device_rows[0])
                per_device[device] = per_device.get(device, 0) + int(device_rows[3])  # type: ignore[call-overload]
            self.committed.set()
        if rejected:
            stats.rejected += rejected
            if not self._full_episode:
                self._full_episode = True
                log.error(
                    "Outbox full (%d of %d bytes): rejecting new readings (when_full: reject_new)",
                    self._bytes,
                    self.config.max_size,
                )
        elif self._full_episode and self._bytes < self.config.max_size * 0.9:
            self._full_episode = False
            log.warning(
                "Outbox below its size limit again; dropped so far: %d oldest, %d rejected",
                stats.dropped_oldest,
                stats.rejected,
            )

    def _count_dropped(self, pairs: Iterable[tuple[str, int]]) -> None:
        """Per-device counts of dropped or rejected readings, for the metrics."""
        per_device = self.stats.dropped_per_device
        for device, n in pairs:
            per_device[device] = per_device.get(device, 0) + n

    def _drop_oldest(self) -> None:
        assert self._db is not None
        conn = self._db
        target = int(self.config.max_size * 0.95)  # free a little more, so drops come in episodes
        dropped = dropped_bytes = dropped_rows = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            while self._bytes - dropped_bytes > target:
                gone = conn.execute(
                    "DELETE FROM chunks WHERE id IN (SELECT id FROM chunks ORDER BY id LIMIT 64)"
                    " RETURNING count, bytes, device"
                ).fetchall()
                if not gone:
                    break
                dropped_rows += len(gone)
                dropped += sum(g[0] for g in gone)
                dropped_bytes += sum(g[1] for g in gone)
                self._count_dropped((g[2], g[0]) for g in gone)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._rows -= dropped_rows
        self._readings -= dropped
        self._bytes -= dropped_bytes
        self.stats.dropped_oldest += dropped
        if not self._full_episode:
            self._full_episode = True
            log.error(
                "Outbox full (max_size %d bytes): dropping the oldest readings (when_full: drop_oldest); "
                "%d dropped so far",
                self.config.max_size,
                self.stats.dropped_oldest,
            )

    def _housekeeping(self) -> None:
        assert self._db is not None
        conn = self._db
        if self.config.max_age is not None and self._rows:
            cutoff = time.time() - self.config.max_age
            conn.execute("BEGIN IMMEDIATE")
            try:
                gone = conn.execute(
                    "DELETE FROM chunks WHERE last_ts < ? RETURNING count, bytes, device", (cutoff,)
                ).fetchall()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if gone:
                count = sum(g[0] for g in gone)
                self._count_dropped((g[2], g[0]) for g in gone)
                self._rows -= len(gone)
                self._readings -= count
                self._bytes -= sum(g[1] for g in gone)
                self.stats.dropped_age += count
                log.warning("Outbox dropped %d readings older than max_age %gs", count, self.config.max_age)
        if self._rows == 0:
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            if free > 1024:
                conn.execute("PRAGMA incremental_vacuum")
