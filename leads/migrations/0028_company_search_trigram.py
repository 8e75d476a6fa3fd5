"""Trigram indexes for the global search's company lookup on PostgreSQL.

The reps' global search matches a substring of a company's name or domain,
lower-cased; with pg_trgm (created by 0002), PostgreSQL answers it from these
GIN indexes instead of scanning every company. SQLite has no such index and
scans, which is fine at its sizes.
"""

from django.db import migrations


def _on_postgresql(schema_editor):
    return schema_editor.connection.vendor == "postgresql"


def create(apps, schema_editor):
    if _on_postgresql(schema_editor):
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS company_name_trgm ON leads_company USING gin (lower(name) gin_trgm_ops)"
        )
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS company_domain_trgm ON leads_company USING gin (lower(domain) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if _on_postgresql(schema_editor):
        schema_editor.execute("DROP INDEX IF EXISTS company_domain_trgm")
        schema_editor.execute("DROP INDEX IF EXISTS company_name_trgm")


class Migration(migrations.Migration):
    dependencies = [("leads", "0027_lead_name_index")]
    operations = [migrations.RunPython(create, drop)]
