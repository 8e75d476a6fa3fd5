"""The queue between the tracking endpoint and the ingest worker.

The endpoint only validates a hit and appends it here; a worker drains it in
batches and writes the page views with one INSERT per batch (traffic.ingest).
A hit is acknowledged (204) only once it is in the queue, and leaves the queue
only after its batch committed: a worker that dies mid-batch leaves it there,
and the next drain writes it again, where the unique (hit_id, received_at)
makes it one row.

Two backends, chosen by CRM_TRACKING_QUEUE_URL:
- `redis://...` (production; the default when Celery's broker is Redis): a
  Redis list shared by every web and worker host. Any number of drains take
  their own batches at once; the list is capped (CRM_TRACKING_QUEUE_MAX) so a stopped
  worker makes the endpoint answer 503 instead of filling Redis's memory.
- `spool:` (the embedded default): JSON lines appended to
  var/tracking/current.jsonl on this host, under a lock on a file of its own
  (spool.lock). A drain renames the file under the same lock and reads it
  whole, so a writer always appends to the file of the moment, however often
  drains take it. Fit for one host, as the embedded default is.
"""

import errno
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from core.redisconn import ThreadConnection


class QueueFull(Exception):
    """The queue holds CRM_TRACKING_QUEUE_MAX hits: the ingest worker is behind or stopped."""


def _dumps(hit: dict) -> str:
    return json.dumps(hit, separators=(",", ":"), ensure_ascii=True)


class SpoolQueue:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.current = self.directory / "current.jsonl"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The spool's lock, held by a writer while it appends and by a drain while it takes the file away.

        On a file of its own, which never moves: locking current.jsonl itself let a drain rename it between a
        writer's open and its lock, and a writer racing a busy drain could lose every retry.
        """
        lock = os.open(self.directory / "spool.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        finally:
            os.close(lock)  # releases the lock

    def push(self, hit: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        line = (_dumps(hit) + "\n").encode()
        with self._locked():
            fd = os.open(self.current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                # The cap in bytes: a queued hit takes about half a kilobyte, a few at most.
                size = os.fstat(fd).st_size
                if size >= settings.CRM_TRACKING_QUEUE_MAX * 1024:
                    raise QueueFull("The tracking spool is full: is the ingest worker running?")
                self._append(fd, line, size)
            finally:
                os.close(fd)

    @staticmethod
    def _append(fd: int, line: bytes, size: int) -> None:
        """Write the whole line, or nothing: a full disk (ENOSPC, answered as a 503 by core.http) can take part
        of it, and a cut line left there would swallow the next one appended after it."""
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, "No space left on device: the line was cut")
        except OSError:
            if os.fstat(fd).st_size > size:
                os.ftruncate(fd, size)
            raise

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
                with self._locked():  # no write is half done when the file moves
                    os.rename(self.current, taken)
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


# Take up to ARGV[1] items from the head of the queue into this drain's own list, atomically, and note when.
_TAKE = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
for i = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 999, #items)))
end
redis.call('ZADD', KEYS[3], ARGV[2], KEYS[2])
return items
"""

# Put the items of the drains taken before ARGV[1] (or of the one named in ARGV[2]) back at the head of the queue,
# in their order.
_GIVE_BACK = """
local lists = {}
if ARGV[2] ~= '' then lists = {ARGV[2]} else lists = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1]) end
local n = 0
for _, list in ipairs(lists) do
  local items = redis.call('LRANGE', list, 0, -1)
  for i = #items, 1, -1 do redis.call('LPUSH', KEYS[1], items[i]) end
  n = n + #items
  redis.call('DEL', list)
  redis.call('ZREM', KEYS[2], list)
end
return n
"""


class RedisQueue:
    """A Redis list every host pushes to; any number of drains at once, each taking its own batch.

    A drain moves its batch into a list of its own (`<key>:taken:<token>`, noted with the time in the
    sorted set `<key>:taken`), atomically. When the batch is written the list is deleted; when the block
    fails the batch goes back to the head of the queue at once; when the worker dies mid-batch, the next
    drain puts back what was taken more than CRM_QUEUE_STALE_SECONDS ago. So nothing acknowledged is
    lost, and what is written twice is deduplicated by its id downstream.
    """

    def __init__(self, url: str, key: str = "crm:tracking:hits"):
        import redis

        self.redis = redis.Redis.from_url(url)
        self.KEY, self.TAKEN = key, f"{key}:taken"
        self._fast = ThreadConnection(self.redis)  # the endpoints' pushes
        self._take = self.redis.register_script(_TAKE)
        self._give_back = self.redis.register_script(_GIVE_BACK)

    def push(self, hit: dict) -> None:
        line = _dumps(hit)
        length = self._fast.command("RPUSH", self.KEY, line)  # one round trip: RPUSH answers the list's new length
        if length > settings.CRM_TRACKING_QUEUE_MAX:
            # Taken back: the endpoint says 503, and the hit is not counted as accepted.
            self.redis.lrem(self.KEY, -1, line)
            raise QueueFull("The tracking queue is full: is the ingest worker running?")

    def give_back_stale(self, *, now: float | None = None) -> int:
        """Put back the batches of drains that died (taken longer ago than the stale time); returns the items."""
        cutoff = (now if now is not None else time.time()) - settings.CRM_QUEUE_STALE_SECONDS
        return int(self._give_back(keys=[self.KEY, self.TAKEN], args=[cutoff, ""]))

    @contextmanager
    def drain(self, limit: int) -> Iterator[list[dict]]:
        self.give_back_stale()
        taken = f"{self.TAKEN}:{uuid.uuid4().hex}"
        raw = self._take(keys=[self.KEY, taken, self.TAKEN], args=[limit, time.time()])
        hits = []
        for item in raw:
            try:
                hits.append(json.loads(item))
            except ValueError:
                continue
        try:
            yield hits
        except BaseException:
            if raw:
                self._give_back(keys=[self.KEY, self.TAKEN], args=[0, taken])
            raise
        if raw:
            pipe = self.redis.pipeline()
            pipe.delete(taken)
            pipe.zrem(self.TAKEN, taken)
            pipe.execute()

    def size(self) -> int:
        """Items waiting, and items taken by drains not finished yet."""
        taken = self.redis.zrange(self.TAKEN, 0, -1)
        pipe = self.redis.pipeline()
        pipe.llen(self.KEY)
        for name in taken:
            pipe.llen(name)
        return int(sum(pipe.execute()))


_queues: dict = {}


def queue_for(url: str, *, key: str, spool: str):
    """The queue a setting names (one per process): a Redis list under `key` for a redis:// URL, else a spool
    in the folder after "spool:" (default VAR_DIR/<spool>).

    Asked on every page view and submission, so a queue already made is found by the settings alone: no path
    is built for it.
    """
    known = (url, key, spool, settings.VAR_DIR)
    made = _queues.get(known)
    if made is None:
        made = _queues[known] = RedisQueue(url, key) if url.startswith(("redis://", "rediss://")) else SpoolQueue(
            Path(url.removeprefix("spool:") or settings.VAR_DIR / spool)
        )
    return made


def hit_queue():
    """The tracking hits' queue (CRM_TRACKING_QUEUE_URL)."""
    return queue_for(settings.CRM_TRACKING_QUEUE_URL, key=settings.CRM_TRACKING_QUEUE_KEY, spool="tracking")
