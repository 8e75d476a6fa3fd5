"""Working through many rows a batch at a time: deleting without one long statement, slicing ids or rows, and
a background job's batches for a while at a time."""

import time
from collections.abc import Callable


def delete_in_batches(rows, *, batch_size: int = 5000) -> int:
    """Delete the rows of the queryset `rows`, `batch_size` per statement (no long lock, no huge IN list), with
    what cascades from them; returns how many of `rows`' own model went."""
    model = rows.model
    removed = 0
    while True:
        ids = list(rows.values_list("id", flat=True)[:batch_size])
        if not ids:
            return removed
        removed += model.objects.filter(id__in=ids).delete()[1].get(model._meta.label, 0)


def batched(values, size: int):
    """`values` (any iterable) in lists of at most `size`, in order: ids in slices a database takes as query
    parameters, rows in chunks to write. (itertools.batched from Python 3.12, as lists.)"""
    batch = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def work_for(seconds: float, step: Callable[[], bool]) -> bool:
    """Call `step` (one batch of a job; it says whether there is more) until the job is done or `seconds` have
    passed; returns whether work is left, for the caller to hand to a new task (Saleor's batches that re-queue
    themselves: a worker is never held for a whole job, and a restart loses at most one batch)."""
    deadline = time.monotonic() + seconds
    while step():
        if time.monotonic() > deadline:
            return True
    return False
