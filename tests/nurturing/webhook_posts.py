"""Calling the providers' webhooks as each provider does: its content type and its authentication.

Every call carries our basic-auth secret; providers that sign their calls
are signed with test keys set in `anymail_settings()`.
"""

import base64
import hashlib
import hmac
import json
import uuid
from functools import cache
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from django.urls import reverse
from django.utils import timezone

SECRET = "hooks:s3cret-pass"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}
MAILGUN_KEY = "mailgun-signing-key"
MAILERSEND_SECRETS = {"mailersend_tracking_webhook": "ms-tracking-secret", "mailersend_inbound_webhook": "ms-inbound-secret"}
MANDRILL_KEY = "mandrill-webhook-key"
UNISENDER_KEY = "unisender-api-key"
FORM = "application/x-www-form-urlencoded"


@cache
def _sendgrid_key():
    return ec.generate_private_key(ec.SECP256R1())


@cache
def _postal_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_der_b64(key) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def anymail_settings() -> dict:
    """Every provider configured, so that each webhook URL checks its real authentication."""
    return {
        "WEBHOOK_SECRET": SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        "MAILERSEND_SIGNING_SECRET": MAILERSEND_SECRETS["mailersend_tracking_webhook"],
        "MAILERSEND_INBOUND_SECRET": MAILERSEND_SECRETS["mailersend_inbound_webhook"],
        "MANDRILL_WEBHOOK_KEY": MANDRILL_KEY,
        "POSTAL_WEBHOOK_KEY": _public_der_b64(_postal_key()),
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": _public_der_b64(_sendgrid_key()),
        "UNISENDER_GO_API_KEY": UNISENDER_KEY,
        "RESEND_API_KEY": "re_test_key",
        "MAILTRAP_API_TOKEN": "mailtrap-test-token",
        "BREVO_API_KEY": "brevo-test-key",
        "SENDINBLUE_API_KEY": "brevo-test-key",
        "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": False,
    }


def url(name: str, **kwargs) -> str:
    return reverse(f"nurturing:webhooks:{name}", kwargs=kwargs or None)


def mailgun_signature(*, signed_at=None, token=None, key=MAILGUN_KEY) -> dict:
    timestamp = str(int((signed_at or timezone.now()).timestamp()))
    token = token or uuid.uuid4().hex
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": signature}


def _signed_headers(name: str, body: bytes) -> dict:
    """The signature headers a provider adds to a JSON body (none for basic-auth-only providers)."""
    if name in MAILERSEND_SECRETS:
        return {"HTTP_SIGNATURE": hmac.new(MAILERSEND_SECRETS[name].encode(), body, hashlib.sha256).hexdigest()}
    if name.startswith("postal_"):
        signature = _postal_key().sign(body, padding.PKCS1v15(), hashes.SHA1())
        return {"HTTP_X_POSTAL_SIGNATURE": base64.b64encode(signature).decode()}
    if name == "sendgrid_tracking_webhook":
        timestamp = str(int(timezone.now().timestamp()))
        signature = _sendgrid_key().sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": base64.b64encode(signature).decode(),
                "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": timestamp}
    return {}


def _sign_json(name: str, text: str) -> str:
    """Providers that sign inside the JSON body: Mailgun's signature block, Unisender Go's auth field."""
    try:
        payload = json.loads(text)
    except ValueError:
        return text
    if not isinstance(payload, dict):
        return text
    if name == "mailgun_tracking_webhook" and "signature" not in payload:
        return json.dumps({"signature": mailgun_signature(), **payload})
    if name == "unisender_go_tracking_webhook":
        placeholder = {**payload, "auth": UNISENDER_KEY}
        text = json.dumps(placeholder)
        return text.replace(UNISENDER_KEY, hashlib.md5(text.encode()).hexdigest())
    return text


def post_json(client, name, payload, *, auth=AUTH, **url_kwargs):
    """A provider's JSON webhook call (a Python object, or text sent as it is)."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    text = _sign_json(name, text)
    headers = _signed_headers(name, text.encode())
    return client.post(url(name, **url_kwargs), data=text, content_type="application/json", **auth, **headers)


def post_sns(client, name, sns_message, *, auth=AUTH):
    """Amazon SNS's call for SES: JSON sent as text/plain, its type and id repeated in headers."""
    text = sns_message if isinstance(sns_message, str) else json.dumps(sns_message)
    envelope = sns_message if isinstance(sns_message, dict) else {}
    return client.post(
        url(name), data=text, content_type="text/plain; charset=UTF-8", **auth,
        HTTP_X_AMZ_SNS_MESSAGE_TYPE=envelope.get("Type", "Notification"),
        HTTP_X_AMZ_SNS_MESSAGE_ID=envelope.get("MessageId", "sns-message-1"),
    )


def post_form(client, name, fields: dict, *, auth=AUTH, **url_kwargs):
    """A provider's form-encoded call: Mailgun inbound and Mandrill sign their fields, SendGrid inbound does not."""
    path = url(name, **url_kwargs)
    headers = {}
    if name == "mailgun_inbound_webhook":
        fields = {**mailgun_signature(), **fields}
    if name in ("mandrill_webhook", "mandrill_tracking_webhook"):
        user_pass = base64.b64decode(auth["HTTP_AUTHORIZATION"].split()[1]).decode() + "@" if auth else ""
        signed = f"http://{user_pass}testserver{path}" + "".join(key + fields[key] for key in sorted(fields))
        digest = hmac.new(MANDRILL_KEY.encode(), signed.encode(), hashlib.sha1).digest()
        headers["HTTP_X_MANDRILL_SIGNATURE"] = base64.b64encode(digest).decode()
    return client.post(path, data=urlencode(fields), content_type=FORM, **auth, **headers)
