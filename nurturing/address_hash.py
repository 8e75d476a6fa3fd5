"""The keyed hash a suppression is matched on: an address kept only as its hash cannot be confirmed by guessing.

A hash is the HMAC-SHA256, under CRM_EMAIL_HASH_KEY, of the SHA-256 of the
trimmed, lower-cased address, written `<key id>:<hex>`.

- Without the key, a stored hash (or the one an unsubscribe link carries)
  tells nothing: hashing a guessed address gives nothing to compare it with.
- The inner SHA-256 is what suppressions were matched on before there was a
  key: such a hash becomes a keyed one without its address (see migration
  0006), so people erased before then stay suppressed.
- The key id says which key made a hash. To rotate, put the current key in
  CRM_EMAIL_HASH_KEYS_OLD and set a new one: lookups match hashes made under
  any of them, and `manage.py rehash_suppressions` rewrites under the new key
  every row that still holds its address. A row kept only as a hash (erased)
  cannot be recomputed: it matches as long as its key stays in the old list.
"""

import functools
import hashlib
import hmac

from django.conf import settings
from django.utils.crypto import salted_hmac

from core.emails import normalize_email


@functools.lru_cache(maxsize=8)
def _derived_key(secret_key: str) -> bytes:
    return salted_hmac("crm.nurturing.email_hash_key", "", secret=secret_key, algorithm="sha256").hexdigest().encode()


def current_key() -> bytes:
    # Production requires the setting; local and test settings may leave it empty and get one made from SECRET_KEY.
    return settings.CRM_EMAIL_HASH_KEY.encode() if settings.CRM_EMAIL_HASH_KEY else _derived_key(settings.SECRET_KEY)


def hash_keys() -> list[bytes]:
    """The current key, then the old ones that lookups still accept."""
    return [current_key(), *(key.encode() for key in settings.CRM_EMAIL_HASH_KEYS_OLD if key)]


@functools.lru_cache(maxsize=32)
def key_id(key: bytes) -> str:
    return hmac.new(key, b"crm.nurturing.email_hash key id", hashlib.sha256).hexdigest()[:8]


def unkeyed_hash(email: str) -> str:
    """The plain SHA-256 of a trimmed, lower-cased address: what suppressions were matched on before there was a key."""
    return hashlib.sha256(normalize_email(email).encode()).hexdigest()


def keyed_hash(unkeyed: str, *, key: bytes | None = None) -> str:
    """A plain SHA-256 made into the keyed hash (under the current key unless told)."""
    key = key or current_key()
    return f"{key_id(key)}:{hmac.new(key, unkeyed.encode(), hashlib.sha256).hexdigest()}"


def email_hash(email: str) -> str:
    """The hash an address is stored and matched on now."""
    return keyed_hash(unkeyed_hash(email))


def email_hashes(email: str) -> list[str]:
    """Every hash the address may be stored under: the current key's first, then the old keys'."""
    unkeyed = unkeyed_hash(email)
    return [keyed_hash(unkeyed, key=key) for key in hash_keys()]


def hashes_rewrite(rows, rehashed: list[tuple[int, str]], *, batch_size: int = 1000) -> tuple[int, int]:  # pragma: no mutate
    """Give each suppression in `rehashed` (pk, new hash), oldest first; one whose hash another row has is deleted.

    The batch size only sets how many rows go per query: any size writes the same rows.

    `rows` is the Suppression queryset to write through (a migration's
    historical model will do). The suppression stands either way: the row
    that keeps the hash matches the same address. Returns how many rows were
    rewritten and how many deleted.
    """
    holders = {}
    for start in range(0, len(rehashed), batch_size):
        wanted = [new_hash for _, new_hash in rehashed[start:start + batch_size]]
        holders.update(rows.filter(email_hash__in=wanted).values_list("email_hash", "pk"))
    keep, duplicates = [], []
    for pk, new_hash in rehashed:
        if holders.setdefault(new_hash, pk) == pk:
            keep.append(rows.model(pk=pk, email_hash=new_hash))
        else:
            duplicates.append(pk)
    # New hashes are under the current key, the ones they replace are not: no write collides with a row not yet rewritten.
    for start in range(0, len(duplicates), batch_size):
        rows.filter(pk__in=duplicates[start:start + batch_size]).delete()
    rows.bulk_update(keep, ["email_hash"], batch_size=batch_size)
    return len(keep), len(duplicates)
