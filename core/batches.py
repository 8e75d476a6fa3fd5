"""Deleting many rows without one long statement: a batch of ids at a time."""


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
