"""The queue between the tracking endpoint and the ingest worker.

The endpoint only validates a hit and appends it here; a worker drains it in
batches and writes the page views with one INSERT per batch (traffic.ingest).
A hit is acknowledged (204) only once it is in the queue, and leaves the queue
only after its batch committed: a worker that dies mid-batch leaves it there,
and the next drain writes it again, where the unique (hit_id, received_at)
makes it one row.

Two backends, chosen by CRM_TRACKING_QUEUE_URL:
- `redis://...` (production; the default when Celery's broker is Redis): a
  Redis list shared by every web and worker host. One drainer at a time holds
  a short lock; the list is capped (CRM_TRACKING_QUEUE_MAX) so a stopped
  worker makes the endpoint answer 503 instead of filling Redis's memory.
- `spool:` (the embedded default): JSON lines appended under a file lock to
  var/tracking/current.jsonl on this host. A drain renames the file under the
  same lock and reads it whole; a writer that opened the old name notices and
  writes to the new file. Fit for one host, as the embedded default is.
"""

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings


class QueueFull(Exception):
    """The queue holds CRM_TRACKING_QUEUE_MAX hits: the ingest worker is behind or stopped."""


def _dumps(hit: dict) -> str:
    return json.dumps(hit, separators=(",", ":"), ensure_ascii=True)


class SpoolQueue:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.current = self.directory / "current.jsonl"

    def push(self, hit: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        line = (_dumps(hit) + "\n").encode()
        for _ in range(10):
            fd = os.open(self.current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    same = os.stat(self.current).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if same:  # not renamed by a drain between our open and our lock
                    # The cap in bytes: a queued hit takes about half a kilobyte, a few at most.
                    if os.fstat(fd).st_size >= settings.CRM_TRACKING_QUEUE_MAX * 1024:
                        raise QueueFull("The tracking spool is full: is the ingest worker running?")
                    os.write(fd, line)
                    return
            finally:
                os.close(fd)  # releases the lock
        raise QueueFull("The tracking spool kept moving under this writer.")

    @contextmanager
    def drain(self, limit: int) -> Iterator[list[dict]]:
        """The hits waiting (the batches a crashed drain left first); removed when the block ends without error.

        Only one drain runs at a time on this host; another gets nothing.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.directory / "drain.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield []
                return
            batches = sorted(self.directory.glob("batch-*.jsonl"))
            if not batches and self.current.exists():
                taken = self.directory / f"batch-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.jsonl"
                fd = os.open(self.current, os.O_WRONLY)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # no write is half done when the file moves
                    os.rename(self.current, taken)
                finally:
                    os.close(fd)
                batches = [taken]
            hits, files = [], []
            for path in batches:
                with open(path, "rb") as f:
                    for line in f:
                        try:
                            hits.append(json.loads(line))
                        except ValueError:
                            continue  # a line cut by a full disk: nothing to save in it
                files.append(path)
                if len(hits) >= limit:
                    break
            yield hits
            for path in files:
                path.unlink(missing_ok=True)
        finally:
            os.close(lock)

    def size(self) -> int:
        total = 0
        for path in [self.current, *self.directory.glob("batch-*.jsonl")]:
            try:
                with open(path, "rb") as f:
                    total += sum(1 for _ in f)
            except FileNotFoundError:
                pass
        return total


class RedisQueue:
    def __init__(self, url: str, key: str = "crm:tracking:hits"):
        import redis

        self.redis = redis.Redis.from_url(url)
        self.KEY, self.LOCK = key, f"{key}:drain"

    def push(self, hit: dict) -> None:
        line = _dumps(hit)
        length = self.redis.rpush(self.KEY, line)  # one round trip: RPUSH answers the list's new length
        if length > settings.CRM_TRACKING_QUEUE_MAX:
            # Taken back: the endpoint says 503, and the hit is not counted as accepted.
            self.redis.lrem(self.KEY, -1, line)
            raise QueueFull("The tracking queue is full: is the ingest worker running?")

    @contextmanager
    def drain(self, limit: int) -> Iterator[list[dict]]:
        token = uuid.uuid4().hex
        if not self.redis.set(self.LOCK, token, nx=True, ex=120):
            yield []
            return
        try:
            raw = self.redis.lrange(self.KEY, 0, limit - 1)
            hits = []
            for item in raw:
                try:
                    hits.append(json.loads(item))
                except ValueError:
                    continue
            yield hits
            if raw:
                self.redis.ltrim(self.KEY, len(raw), -1)
        finally:
            # Released only if still ours (a drain slower than the lock's time lost it).
            self.redis.eval(
                "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                1, self.LOCK, token,
            )

    def size(self) -> int:
        return int(self.redis.llen(self.KEY))


_queue = None


def hit_queue():
    """The configured queue (one per process)."""
    global _queue
    url, key = settings.CRM_TRACKING_QUEUE_URL, settings.CRM_TRACKING_QUEUE_KEY
    if _queue is None or getattr(_queue, "_made_for", None) != (url, key):
        _queue = RedisQueue(url, key) if url.startswith(("redis://", "rediss://")) else SpoolQueue(
            Path(url.removeprefix("spool:") or settings.VAR_DIR / "tracking")
        )
        _queue._made_for = (url, key)
    return _queue
