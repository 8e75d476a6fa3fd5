"""Stage moves a sequence made name it by id: link the history written before, read from its actor text.

The text was "sequence <name> step <n>", maybe followed by ", event #<id> (...)".
A row whose sequence has since been renamed or deleted cannot be matched and
stays unlinked (it was already missing from that sequence's report).
"""

from django.db import migrations


def link(apps, schema_editor):
    Sequence = apps.get_model("nurturing", "Sequence")
    Step = apps.get_model("nurturing", "Step")
    StageChange = apps.get_model("leads", "StageChange")
    steps = {(s.sequence_id, s.position): s.pk for s in Step.objects.all().only("pk", "sequence_id", "position")}
    # Longest names first: "Welcome" must not take the rows of "Welcome back".
    for sequence in sorted(Sequence.objects.all().only("pk", "name"), key=lambda s: -len(s.name)):
        prefix = f"sequence {sequence.name} step "
        rows = StageChange.objects.filter(actor__startswith=prefix, source_sequence_id__isnull=True)
        for pk, actor in rows.values_list("pk", "actor").iterator(chunk_size=2000):
            number = actor[len(prefix):].split(",", 1)[0].strip()
            if number.isdigit() and (sequence.pk, int(number)) in steps:
                StageChange.objects.filter(pk=pk).update(
                    source_sequence_id=sequence.pk, source_step_id=steps[(sequence.pk, int(number))]
                )


class Migration(migrations.Migration):
    dependencies = [("nurturing", "0007_sequence_send_as_others"), ("leads", "0009_stage_change_source")]
    operations = [migrations.RunPython(link, migrations.RunPython.noop)]
