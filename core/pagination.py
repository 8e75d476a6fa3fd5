"""A paginator that never counts a million rows.

Django's admin counts the (filtered) rows to show "N results" and the page
links. On a big table that COUNT(*) dominates the page. This paginator counts
exactly up to a limit (reading at most limit+1 index entries) and, past it,
takes PostgreSQL's planner estimate, as large Django sites do.
"""

import json

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.db.models.expressions import RawSQL
from django.utils.functional import cached_property


def estimated_count(queryset) -> int | None:
    """The planner's row estimate for a queryset (PostgreSQL only), or None."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    try:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:  # a filter nothing can match, such as an id past the column's range
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class BoundedCountPaginator(Paginator):
    @property
    def exact_limit(self) -> int:
        return settings.CRM_ADMIN_EXACT_COUNT_LIMIT

    @cached_property
    def is_estimated(self) -> bool:
        return self._count[1]

    @cached_property
    def _count(self):
        bounded = self.object_list.order_by()[: self.exact_limit + 1].count()
        # Asked on every page (on PostgreSQL; under a millisecond), not only
        # past the limit, so a page makes the same queries at any table size.
        estimate = estimated_count(self.object_list)
        if bounded <= self.exact_limit:
            return bounded, False
        return max(estimate or 0, bounded), True

    @cached_property
    def count(self):
        return self._count[0]


def bounded_union(branches) -> RawSQL:
    """One subquery of the primary keys of every branch, each branch already sliced (`qs.values("pk")[:n]`),
    joined by UNION ALL: `Model.objects.filter(pk__in=bounded_union([...]))` reads several bounded, ordered
    pages in one query, each branch on its own index.

    Each branch is read as a derived table: SQLite refuses a LIMIT or an ORDER BY directly inside a UNION ALL.
    A branch that can match nothing (EmptyResultSet) is left out; with no branch left it matches nothing."""
    parts, params = [], []
    for i, branch in enumerate(branches):
        try:
            sql, branch_params = branch.query.sql_with_params()
        except EmptyResultSet:
            continue
        parts.append(f"SELECT * FROM ({sql}) branch{i}")
        params.extend(branch_params)
    if not parts:
        return RawSQL("SELECT NULL WHERE 1 = 0", [])
    return RawSQL(" UNION ALL ".join(parts), params)
