"""Standard Webhooks signatures: the spec's test vector, our verifier, a from-scratch signer."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from app.webhooks.signing import WebhookVerificationError, headers_for, sign, verify

# The Standard Webhooks specification's published example.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def from_scratch(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The spec's algorithm written out independently of app.webhooks.signing."""
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def spec_headers(signature: str = SPEC_SIGNATURE) -> dict[str, str]:
    return {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP),
            "webhook-signature": signature}


def test_our_signer_reproduces_the_spec_vector() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_a_from_scratch_signer_reproduces_the_spec_vector() -> None:
    assert from_scratch(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_our_verifier_accepts_the_spec_vector() -> None:
    verify(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SPEC_TIMESTAMP + 10)


def test_headers_are_matched_case_insensitively_and_rotated_signatures_accepted() -> None:
    headers = {k.title(): v for k, v in spec_headers(f"v1,bm9wZQ== {SPEC_SIGNATURE}").items()}
    verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP)


@pytest.mark.parametrize(
    ("secret", "headers", "body", "now"),
    [
        (SPEC_SECRET, spec_headers(), b'{"test": 2432232315}', SPEC_TIMESTAMP),  # tampered
        ("whsec_" + base64.b64encode(b"another-key-16-bytes").decode(), spec_headers(),
         SPEC_BODY, SPEC_TIMESTAMP),  # wrong secret
        (SPEC_SECRET, spec_headers(), SPEC_BODY, SPEC_TIMESTAMP + 301),  # too old
        (SPEC_SECRET, spec_headers(), SPEC_BODY, SPEC_TIMESTAMP - 301),  # from the future
        (SPEC_SECRET, {"webhook-id": SPEC_ID}, SPEC_BODY, SPEC_TIMESTAMP),  # headers missing
        (SPEC_SECRET, spec_headers() | {"webhook-timestamp": "soon"}, SPEC_BODY,
         SPEC_TIMESTAMP),
        (SPEC_SECRET, spec_headers() | {"webhook-id": "msg_other"}, SPEC_BODY,
         SPEC_TIMESTAMP),  # the id is signed too
    ],
)
def test_the_verifier_refuses_anything_else(
    secret: str, headers: dict[str, str], body: bytes, now: int
) -> None:
    with pytest.raises(WebhookVerificationError):
        verify(secret, headers, body, now=now)


def test_headers_for_signs_what_verify_accepts() -> None:
    headers = headers_for(SPEC_SECRET, "evt_1", b"{}", timestamp=1700000000)
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-signature"] == from_scratch(SPEC_SECRET, "evt_1", 1700000000, b"{}")
    verify(SPEC_SECRET, headers, b"{}", now=1700000000)


def test_a_secret_that_is_not_whsec_base64_is_refused() -> None:
    with pytest.raises(ValueError, match="base64"):
        sign("whsec_not base64!", "id", 1, b"")
