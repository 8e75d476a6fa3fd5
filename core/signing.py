"""`dumps`: Django's `signing.dumps` (a timestamped, signed, URL-safe token) for tokens made in bulk.

The engine signs an unsubscribe link into every email it sends. Django's
`signing.dumps` builds a signer per token (reading three settings), derives
the HMAC key from the salt and SECRET_KEY each time and makes a JSON encoder
per call: together about as much as the rest of the token. This one keeps the
derived key's HMAC per (secret, salt) and copies it, and gives the same string
Django gives at the same second, so `django.core.signing.loads` reads it (with
SECRET_KEY_FALLBACKS, max_age and all) and tokens made either way are alike.
"""

import base64
import hashlib
import hmac
import json
import time
import zlib

from django.conf import settings
from django.core.signing import b62_encode

_ENCODER = json.JSONEncoder(separators=(",", ":"))  # what django.core.signing.JSONSerializer uses
_HMACS: dict = {}


def _mac(secret, salt: str):
    """The HMAC-SHA256 Django's Signer keys with salted_hmac(salt + "signer", ..., secret), ready to copy."""
    key = (secret, salt)
    mac = _HMACS.get(key)
    if mac is None:
        secret_bytes = secret if isinstance(secret, bytes) else str(secret).encode()
        derived = hashlib.sha256((salt + "signer").encode() + secret_bytes).digest()
        mac = hmac.new(derived, digestmod=hashlib.sha256)
        if len(_HMACS) >= 64:  # a few salts, and a key rotation now and then
            _HMACS.clear()
        _HMACS[key] = mac
    return mac


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def dumps(obj, *, salt: str, compress: bool = False) -> str:
    """`django.core.signing.dumps(obj, salt=salt, compress=compress)` with the default key and serializer."""
    data = _ENCODER.encode(obj).encode("latin-1")
    prefix = ""
    if compress:
        compressed = zlib.compress(data)
        if len(compressed) < len(data) - 1:
            data, prefix = compressed, "."
    value = f"{prefix}{_b64(data)}:{b62_encode(int(time.time()))}"
    mac = _mac(settings.SECRET_KEY, salt).copy()
    mac.update(value.encode())
    return f"{value}:{_b64(mac.digest())}"
