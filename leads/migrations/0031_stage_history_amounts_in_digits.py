"""Stage history written before amounts were read in digits only: a deal value typed as "1e3" was kept in the
reasons the services write ("Converted: deal #12 won, 1E+3 EUR", "Deal opened: Pro: 1E+3 EUR (Open)"). Those
amounts are rewritten as the reasons now say them ("1,000 EUR"); a reason a person typed is left as it is."""

import re
from decimal import Decimal

from django.db import migrations
from django.db.models import Q

WRITTEN_BY_SERVICES = ("Converted: deal #", "Deal opened: ")
SCIENTIFIC = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?E\+\d+) ([A-Z]{3})\b")


def _in_digits(match) -> str:
    amount = Decimal(match.group(1))
    digits = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    return f"{digits} {match.group(2)}"


def rewrite(apps, schema_editor):
    StageChange = apps.get_model("leads", "StageChange")
    changed = []
    written = Q(reason__startswith=WRITTEN_BY_SERVICES[0]) | Q(reason__startswith=WRITTEN_BY_SERVICES[1])
    for change in StageChange.objects.filter(written, reason__contains="E+").only("reason").iterator(chunk_size=2000):
        reason = SCIENTIFIC.sub(_in_digits, change.reason)
        if reason != change.reason:
            change.reason = reason
            changed.append(change)
    StageChange.objects.bulk_update(changed, ["reason"], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ("leads", "0030_board_indexes"),
    ]

    operations = [migrations.RunPython(rewrite, migrations.RunPython.noop, elidable=True)]
