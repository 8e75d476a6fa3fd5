"""A trigram index for lead search on PostgreSQL.

The admin's and the reps' search is a substring match on Lead.search_text;
with pg_trgm, PostgreSQL answers it from a GIN index instead of scanning every
lead. SQLite has no such index and scans, which is fine at its sizes.
"""

from django.db import migrations


def _on_postgresql(schema_editor):
    return schema_editor.connection.vendor == "postgresql"


def create(apps, schema_editor):
    if _on_postgresql(schema_editor):
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS lead_search_trgm ON leads_lead USING gin (search_text gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if _on_postgresql(schema_editor):
        schema_editor.execute("DROP INDEX IF EXISTS lead_search_trgm")


class Migration(migrations.Migration):
    dependencies = [("leads", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
