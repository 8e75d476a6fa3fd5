"""`rows_insert`: many new rows of a model in one INSERT each `batch_size`, from dicts, without model instances.

For the hot paths that append rows by the hundred (the engine's next steps and
`email.sent` events): `bulk_create` makes a model instance per row (every
field's default, init signals) and prepares each value through the compiler,
which cost the engine more per email than the INSERT itself. The same rows go
in here: missing fields take their defaults, `auto_now`/`auto_now_add` fields
the time of the call, and each value is prepared by its field as `bulk_create`
would. No signals are sent and no instances are returned (as with
`bulk_create`, no `save()` is called).
"""

from collections.abc import Iterable

from django.db import connections, router
from django.db.models.constants import OnConflict
from django.utils import timezone

from .batches import batched


def _columns(model):
    """The concrete fields an INSERT writes (not the auto primary key)."""
    return [f for f in model._meta.concrete_fields if not (f.primary_key and f.db_returning)]


def rows_insert(model, rows: Iterable[dict], *, ignore_conflicts: bool = False, batch_size: int = 500) -> int:
    """Insert `rows` (dicts of field attname -> value) into `model`'s table; returns how many rows went in
    (with `ignore_conflicts`, the ones a unique constraint refused are not counted)."""
    using = router.db_for_write(model)
    connection = connections[using]
    fields = _columns(model)
    attnames = {f.attname for f in fields}
    now = timezone.now()
    fixed, per_row = {}, []  # values the same for every row not giving them; defaults made per row (callables)
    for f in fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            fixed[f.attname] = now
        elif callable(f.default):
            per_row.append(f)
        else:
            fixed[f.attname] = f.get_default()  # the field's default, or None / "" as Django gives one without it
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    insert = connection.ops.insert_statement(on_conflict=on_conflict)
    suffix = connection.ops.on_conflict_suffix_sql(fields, on_conflict, None, None) if ignore_conflicts else ""
    per_statement = max(1, min(batch_size, (connection.features.max_query_params or 65_535) // len(fields)))
    inserted = 0
    with connection.cursor() as cursor:
        for batch in batched(rows, per_statement):
            params = []
            for row in batch:
                if not row.keys() <= attnames:
                    raise ValueError(f"{model._meta.label} has no field {', '.join(sorted(row.keys() - attnames))}")
                values = {**fixed, **{f.attname: f.get_default() for f in per_row if f.attname not in row}, **row}
                params.extend(f.get_db_prep_save(values[f.attname], connection) for f in fields)
            sql = f"{insert} {table} ({names}) VALUES {', '.join([row_sql] * len(batch))} {suffix}"
            cursor.execute(sql, params)
            inserted += cursor.rowcount
    return inserted
