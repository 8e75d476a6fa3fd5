"""`dumps`: Django's `signing.dumps` (a timestamped, signed, URL-safe token) for tokens made in bulk.

The engine signs an unsubscribe link into every email it sends. Django's
`signing.dumps` builds a signer per token (reading three settings), derives
the HMAC key from the salt and SECRET_KEY each time and makes a JSON encoder
per call: together about as much as the rest of the token. This one keeps the
derived key's HMAC per (secret, salt) and copies it, and gives the same string
Django gives at the same second, so `django.core.signing.loads` reads it (with
SECRET_KEY_FALLBACKS, max_age and all) and tokens made either way are alike.
"""

import hashlib
import hmac
import json
import time
import zlib

from django.conf import settings
from django.core.signing import b62_encode, b64_encode
from django.utils.encoding import force_bytes

_ENCODER = json.JSONEncoder(separators=(",", ":"))  # what django.core.signing.JSONSerializer uses
_HMACS: dict = {}


def _mac(secret, salt: str):
    """The HMAC-SHA256 Django's Signer keys with salted_hmac(salt + "signer", ..., secret), ready to copy."""
    key = (secret, salt)
    mac = _HMACS.get(key)
    if mac is None:
        derived = hashlib.sha256(force_bytes(salt + "signer") + force_bytes(secret)).digest()  # as salted_hmac
        mac = hmac.new(derived, digestmod=hashlib.sha256)
        if len(_HMACS) >= 64:  # a few salts, and a key rotation now and then
            _HMACS.clear()
        _HMACS[key] = mac
    return mac


def dumps(obj, *, salt: str, compress: bool = False) -> str:
    """`django.core.signing.dumps(obj, salt=salt, compress=compress)` with the default key and serializer."""
    data = _ENCODER.encode(obj).encode("latin-1")
    prefix = ""
    if compress:
        compressed = zlib.compress(data)
        if len(compressed) < len(data) - 1:
            data, prefix = compressed, "."
    value = f"{prefix}{b64_encode(data).decode()}:{b62_encode(int(time.time()))}"
    mac = _mac(settings.SECRET_KEY, salt).copy()
    mac.update(value.encode())
    return f"{value}:{b64_encode(mac.digest()).decode()}"
