"""Suppressions are matched on a keyed hash of the address (HMAC-SHA256 under CRM_EMAIL_HASH_KEY), not its plain SHA-256.

A plain SHA-256 lets whoever reads the table (a backup, an export) or an
unsubscribe link confirm a guessed address, an erased person's included.
Every row is rewritten here:

- a row that holds its address gets the keyed hash of that address;
- a row kept only as a hash (an erased person, or a link used after the
  lead's address changed) cannot be recomputed from an address, and need
  not be: the keyed hash is the HMAC of the plain SHA-256, which is what the
  row holds, so it is keyed as it is.

The other way, keeping address-less rows as they were and also looking up
the plain SHA-256 until they are gone, was turned down: it would keep
guessable exactly the hashes that matter most (people who asked to be
forgotten), for ever, since those rows never get an address back. So after
this migration no plain SHA-256 is stored and lookups have no legacy branch.
Unsubscribe links sent before it carry the plain SHA-256: their reader keys
it the same way (nurturing.compose) until they expire.

The key is the one configured when the migration runs: set
CRM_EMAIL_HASH_KEY first (production settings refuse to start without it).
Reversing writes the plain SHA-256 back for rows that hold their address,
and refuses while rows kept only as a keyed hash exist: an HMAC cannot be
undone, and they would stop matching anyone.
"""

from django.db import DEFAULT_DB_ALIAS, migrations, models
from django.db.migrations.exceptions import IrreversibleError

# The app's own hashing, on purpose: this writes hashes in the form the app reads them.
from nurturing.address_hash import hashes_rewrite, keyed_hash, unkeyed_hash

BATCH_SIZE = 1000


def _rows(apps, schema_editor):
    db = schema_editor.connection.alias if schema_editor is not None else DEFAULT_DB_ALIAS
    return apps.get_model("nurturing", "Suppression").objects.using(db)


def key_hashes(apps, schema_editor):
    """Key every plain SHA-256; rows that end up with the same hash are merged into one."""
    rows = _rows(apps, schema_editor)
    rehashed = []
    for pk, email, stored in rows.order_by("created_at", "pk").values_list("pk", "email", "email_hash").iterator(chunk_size=BATCH_SIZE):
        if ":" in stored and not email:
            continue  # keyed already: written by a process that ran the new code before this migration
        rehashed.append((pk, keyed_hash(unkeyed_hash(email) if email else stored)))
    hashes_rewrite(rows, rehashed, batch_size=BATCH_SIZE)


def unkey_hashes(apps, schema_editor):
    rows = _rows(apps, schema_editor)
    hash_only = rows.filter(email="").count()
    if hash_only:
        raise IrreversibleError(
            f"{hash_only} suppression(s) are kept only as a keyed hash (erased people): the plain SHA-256 of their "
            "address cannot be recovered, and without it they would no longer be suppressed."
        )
    keep = [rows.model(pk=pk, email_hash=unkeyed_hash(email)) for pk, email in rows.values_list("pk", "email").iterator(chunk_size=BATCH_SIZE)]
    rows.bulk_update(keep, ["email_hash"], batch_size=BATCH_SIZE)


class Migration(migrations.Migration):
    dependencies = [("nurturing", "0005_emailevent_fewer_indexes")]

    operations = [
        migrations.AlterField(
            model_name="suppression",
            name="email_hash",
            field=models.CharField(editable=False, max_length=80, unique=True),
        ),
        migrations.RunPython(key_hashes, unkey_hashes),
    ]
