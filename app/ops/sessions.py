"""The ops page's sessions: the signed cookie, its CSRF token, and its record.

Signing in takes the ops token once. The session cookie does not hold it: it is
`expiry.nonce.HMAC(key, expiry.nonce)` with a key derived from the token signed in with, so
a session lasts as long as that token is accepted (removing it from OPS_API_TOKEN ends every
session it started), and a cookie can be neither forged nor extended. A session is also on
record (`ops_sessions`, by the SHA-256 of `expiry.nonce`) from sign-in to sign-out, and a
cookie counts only while its record does: signing out ends it on the server, not only in
the browser. Every form that writes carries a CSRF token derived from the same session.

Pure functions, and the record through `OpsSessionRepository`; no HTTP here (that is
`app.ops.endpoints`, which reads the cookie and sets it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.ops.repository import OpsSessionRepository

SESSION_SECONDS = 8 * 3600


def _session_key(ops_token: str) -> bytes:
    return hmac.new(ops_token.encode(), b"payletter-gateway ops page session v1",
                    hashlib.sha256).digest()


def _mac(key: bytes, purpose: str, body: str) -> str:
    return hmac.new(key, f"{purpose}\n{body}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class CookieSession:
    """What a valid cookie says; it counts only while its record is in ops_sessions."""

    expires: int
    csrf: str
    digest: str  # the record's key: SHA-256 of the signed part, never the cookie itself

    @classmethod
    def of(cls, key: bytes, body: str, expires: int) -> CookieSession:
        return cls(expires, _mac(key, "csrf", body), hashlib.sha256(body.encode()).hexdigest())

    def csrf_matches(self, given: object) -> bool:
        """Whether a form's `csrf` field is this session's token (constant time)."""
        return isinstance(given, str) and hmac.compare_digest(
            given.encode(errors="replace"), self.csrf.encode())


def new_session(ops_token: str, now: float | None = None) -> tuple[str, CookieSession]:
    """A new session's cookie value (expiry, a random nonce, and their HMAC), and what it
    says; `start_session` puts it on record."""
    expires = int(now if now is not None else time.time()) + SESSION_SECONDS
    body = f"{expires}.{secrets.token_hex(16)}"
    key = _session_key(ops_token)
    return f"{body}.{_mac(key, 'session', body)}", CookieSession.of(key, body, expires)


def session_cookie(ops_token: str, now: float | None = None) -> str:
    return new_session(ops_token, now)[0]


def read_session(cookie: str | None, ops_tokens: tuple[str, ...], now: float | None = None
                 ) -> CookieSession | None:
    """The session a cookie names, or None if it is missing, forged, expired, or signed
    with a token no longer accepted. Whether it is still on record is `active_session`'s
    check."""
    if not cookie or len(cookie) > 200:
        return None
    body, _, signature = cookie.rpartition(".")
    expires_text, _, nonce = body.partition(".")
    given = signature.encode(errors="replace")
    key = None
    for token in ops_tokens:  # every one, constant time each
        candidate = _session_key(token)
        if hmac.compare_digest(_mac(candidate, "session", body).encode(), given):
            key = candidate
    if key is None or not (expires_text.isdigit() and nonce):
        return None
    current = now if now is not None else time.time()
    expires = int(expires_text)
    if not current < expires <= current + SESSION_SECONDS:
        return None
    return CookieSession.of(key, body, expires)


async def active_session(db: AsyncSession, cookie: str | None, ops_tokens: tuple[str, ...]
                         ) -> CookieSession | None:
    """The cookie's session if it is valid and still on record; a signed-out (or expired)
    session's cookie is a leftover: None."""
    session = read_session(cookie, ops_tokens)
    if session is None or not await OpsSessionRepository(db).is_active(session.digest,
                                                                        utcnow()):
        return None
    return session


async def start_session(db: AsyncSession, ops_token: str, source_addr: str | None) -> str:
    """A new session on record (expired records go here, so the table never piles up);
    the cookie value to set."""
    cookie, session = new_session(ops_token)
    sessions = OpsSessionRepository(db)
    await sessions.delete_expired(utcnow())
    await sessions.add(session.digest, expires_at=datetime.fromtimestamp(session.expires, UTC),
                       source_addr=source_addr)
    return cookie


async def end_session(db: AsyncSession, digest: str) -> None:
    """Its record goes: a copy of the cookie is refused from now on."""
    await OpsSessionRepository(db).end(digest)
