"""The Leads list's sortable columns: each column's two orderings (named sorts of `selectors.SORTS`, each read
from a Lead index), which one is on, and the link that turns it the other way."""

from dataclasses import dataclass

# column -> (ascending sort, descending sort); the first click gives the direction people expect first.
COLUMNS = {
    "name": ("name", "name_desc"),
    "stage": ("stage", "stage_desc"),
    "owner": ("owner", "owner_desc"),
    "score": ("score_asc", "score"),
    "created": ("oldest", "newest"),
    "last_touch": ("least_touched", "last_touch"),
}
FIRST_CLICK = {"score": "descending", "created": "descending", "last_touch": "descending"}
DEFAULT_SORT = "newest"


@dataclass(frozen=True)
class SortHeader:
    aria_sort: str  # "ascending", "descending" or "none"
    href: str  # the list with this column sorted the other way (or its first way), other filters kept


def sort_header(query, column: str) -> SortHeader:
    """`query`: the list's GET parameters."""
    ascending, descending = COLUMNS[column]
    current = query.get("sort") or DEFAULT_SORT
    state = "ascending" if current == ascending else "descending" if current == descending else "none"
    if state == "none":
        target = descending if FIRST_CLICK.get(column) == "descending" else ascending
    else:
        target = descending if state == "ascending" else ascending
    params = query.copy()
    params.pop("page", None)
    params["sort"] = target
    return SortHeader(aria_sort=state, href=f"?{params.urlencode()}")
