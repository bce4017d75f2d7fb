"""Sending one text message through a Twilio-compatible REST API.

`POST {OPENCONSULT_SMS_URL}/2010-04-01/Accounts/{account}/Messages.json`, form-encoded `To`,
`From` and `Body`, HTTP basic auth (account, token), as Twilio takes it. Each request carries the
outbox row's id as `I-Twilio-Idempotency-Token`: a provider that honours it (Twilio does, for a
day) answers a repeat of the same message with the message it already accepted, so a sender that
crashed after the provider accepted a text, but before the row was marked sent, does not text
the patient twice when it tries again. A provider that ignores the header gives at-least-once
delivery in that window only (a crash between the provider's answer and the commit that marks
the row sent, typically milliseconds; the row is retried once its claim expires).

5xx, 429 and network errors are temporary (the outbox retries with back-off); any other 4xx is
permanent (a wrong number, a blocked recipient): the row fails at once with the provider's
reason. The token is never logged nor put in an error.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

import aiohttp

from app.core.config import Settings

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
API_VERSION = "2010-04-01"


class SmsError(Exception):
    """The text did not go out; `permanent` when trying again cannot help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


def messages_url(settings: Settings) -> str:
    assert settings.sms_url is not None and settings.sms_account is not None
    account = quote(settings.sms_account, safe="")
    return f"{settings.sms_url.rstrip('/')}/{API_VERSION}/Accounts/{account}/Messages.json"


def _reason(status: int, body: object, text: str) -> str:
    """The provider's own words (Twilio: {"code": 21211, "message": "Invalid 'To' …"})."""
    if isinstance(body, dict) and body.get("message"):
        code = f" (code {body['code']})" if body.get("code") else ""
        return f"SMS provider refused ({status}){code}: {body['message']}"
    return f"SMS provider answered {status}: {text[:200]}".rstrip(": ")


async def send(settings: Settings, *, key: str, to: str, body: str) -> str | None:
    """Send one text; the provider's message id (sid), None if it gave none. Raises SmsError."""
    assert settings.sms_token is not None and settings.sms_from is not None
    pair = f"{settings.sms_account}:{settings.sms_token.get_secret_value()}".encode()
    auth = "Basic " + base64.b64encode(pair).decode("ascii")
    timeout = aiohttp.ClientTimeout(total=settings.sms_timeout_seconds)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(
                messages_url(settings),
                data={"To": to, "From": settings.sms_from, "Body": body},
                headers={
                    "Authorization": auth,
                    IDEMPOTENCY_HEADER: key,
                    "Accept": "application/json",
                },
            ) as response,
        ):
            text = await response.text()
            try:
                answer: object = await response.json(content_type=None)
            except ValueError:
                answer = None
            status = response.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise SmsError(f"SMS provider unreachable: {type(exc).__name__}", permanent=False) from None
    if 200 <= status < 300:
        # Accepted: sent, even without a sid (sending again could text the patient twice).
        sid = answer.get("sid") if isinstance(answer, dict) else None
        return sid[:64] if isinstance(sid, str) else None
    permanent = 400 <= status < 500 and status != 429
    raise SmsError(_reason(status, answer, text), permanent=permanent)
