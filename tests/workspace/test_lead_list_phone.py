"""The Leads list on a phone: the filters behind a "Filters" button, the rows as cards (CSS), selecting reachable."""

from django.contrib.staticfiles import finders
from django.urls import reverse


def test_the_filters_are_behind_a_filters_button_closed_in_the_page(rep_client, own_lead):
    page = rep_client.get(reverse("workspace:lead_list")).content.decode()
    assert '<details class="lead-filters filters-fold mb-3" id="lead-filters">' in page
    filters = page.index('<details class="lead-filters')  # (the nav's global search is a search form too)
    assert filters < page.index("<summary", filters) < page.index('role="search"', filters) < page.index("</details>", filters)
    assert "workspace/lead_list.css" in page and "workspace/lead_list.js" in page


def test_the_rows_carry_what_a_card_shows_and_a_select_all_within_thumb_reach(rep_client, own_lead):
    page = rep_client.get(reverse("workspace:lead_list")).content.decode()
    assert 'data-label="Status"' in page and 'data-label="Next task"' in page
    assert 'class="bulk-all-sm' in page


def test_the_cards_are_drawn_by_a_media_query_without_inline_styles():
    css = open(finders.find("workspace/lead_list.css")).read()
    assert "@media (max-width: 576px)" in css and ".table-leads tr {" in css
    assert ".table-leads td[data-label]::before" in css
