"""Every setting of the service, read from the environment (and `.env`) in one place.

Defaults depend on `PAYLETTER_ENV`: `sim` runs with no configuration at all against the
local simulator; `test` and `live` talk to Payletter and refuse to start without the
secrets they need.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from functools import cached_property
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.kit.net import Network, is_loopback_host
from app.payletter.models import MerchantCredentials
from app.webhooks.signing import secret_key

log = logging.getLogger(__name__)

PayletterEnv = Literal["sim", "test", "live"]

SIM_BASE_URL = "http://127.0.0.1:8001/"
BASE_URLS: dict[str, str] = {
    "sim": SIM_BASE_URL,
    "test": "https://testpgapi.payletter.com/",
    "live": "https://pgapi.payletter.com/",
}
# Where Payletter's callbacks come from (vendor page, "방화벽").
CALLBACK_IPS: dict[str, str] = {
    "sim": "127.0.0.0/8,::1",
    "test": "121.254.205.166",
    "live": "211.115.72.37,211.115.72.38,211.115.117.11",
}
# The vendor's published test merchant: safe defaults for sim and test, never for live.
PUBLIC_TEST_MERCHANT = {
    "client_id": "pay_test",
    "payment_key": "MTFBNTAzNTEwNDAxQUIyMjlCQzgwNTg1MkU4MkZENDA=",
    "search_key": "MUI3MjM0RUExQTgyRDA1ODZGRDUyOEM4OTY2QTVCN0Y=",
}
# Tokens that work out of the box in sim only (printed by `make run`).
SIM_SHOP_TOKEN = "sim-shop-token"  # noqa: S105  (public demo value, sim only)
SIM_OPS_TOKEN = "sim-ops-token"  # noqa: S105
SIM_INTENT_SECRET = "sim-intent-secret-for-the-demo-only"  # noqa: S105

# Outside sim, every bearer token: what `secrets.token_urlsafe(32)` gives is 43 characters.
MIN_TOKEN_LENGTH = 32
# A trusted range broader than this believes (or lets call back) far too many hosts.
MIN_PREFIX = {4: 8, 6: 32}

_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "token", "xxx", "todo", "replace-me"}


class ConfigError(ValueError):
    """The configuration cannot run safely; the message names the variable to fix."""


def is_placeholder(value: str | None) -> bool:
    if value is None:
        return True
    v = value.strip().lower()
    return (
        v in _PLACEHOLDERS
        or v.startswith(("sim-", "your", "<", "${", "example"))
        or set(v) <= {"x", "*", "-", "."}
    )


def split_tokens(value: str | None) -> tuple[str, ...]:
    """A token variable may list several, comma-separated, so two are valid during rotation."""
    return tuple(t.strip() for t in (value or "").split(",") if t.strip())


def parse_networks(raw: str | list[str] | None, variable: str) -> tuple[Network, ...]:
    """Parse a comma-separated list of addresses/CIDRs; empty means none."""
    items = raw if isinstance(raw, list) else (raw or "").split(",")
    networks: list[Network] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise ConfigError(f"{variable}: {item!r} is not an IP address or CIDR") from exc
        if network.prefixlen < MIN_PREFIX[network.version]:
            raise ConfigError(
                f"{variable}: {item!r} is too broad (IPv4 ranges must be /8 or narrower, "
                "IPv6 /32 or narrower): every host in it would be trusted. List the exact "
                "addresses or subnets")
        networks.append(network)
    return tuple(networks)


CsvStr = Annotated[str | None, NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str = "sqlite+aiosqlite:///./var/gateway.db"
    # Per process (each worker, dispatcher, CLI command): up to pool + overflow connections.
    # All 30 in the pool by default: SQLAlchemy closes an overflow connection the moment it
    # is returned, so under load every request past the pool paid for a new connection
    # (TCP, authentication, preparing its statements again).
    database_pool_size: int = Field(default=30, ge=1, le=1000)
    database_max_overflow: int = Field(default=0, ge=0, le=1000)
    payletter_env: PayletterEnv = "sim"
    payletter_base_url: str | None = None
    payletter_client_id: str | None = None
    payletter_payment_key: SecretStr | None = None
    payletter_search_key: SecretStr | None = None
    payletter_merchants: Annotated[str | None, NoDecode] = None
    payletter_callback_ips: CsvStr = None
    payletter_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    trusted_proxies: CsvStr = None
    public_base_url: str = "http://127.0.0.1:8000"
    shop_api_token: SecretStr | None = None
    ops_api_token: SecretStr | None = None
    # Bearer token(s) /metrics takes, comma-separated; unset or empty: /metrics is open.
    metrics_token: SecretStr | None = None
    # /docs, /redoc and /openapi.json: served in sim, elsewhere only when true.
    api_docs: bool | None = None
    shop_webhook_url: str | None = None
    shop_webhook_secret: SecretStr | None = None
    # Logs: "json" (one object a line, with the request id) or "text".
    log_format: Literal["json", "text"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # The address Payletter's cancel/autopay calls report as ours (their `ip_addr` field).
    payletter_request_ip: str = "127.0.0.1"
    # The status sweeper: asks Payletter about orders left pending and refunds left unknown.
    sync_sweeper: bool = True
    sync_interval_seconds: float = Field(default=60.0, gt=0)
    sync_pending_after_seconds: float = Field(default=1800.0, gt=0)
    refund_unknown_fail_after_seconds: float = Field(default=3600.0, gt=0)
    # Webhook delivery (the outbox dispatcher).
    webhook_dispatcher: bool = True  # run the dispatcher inside the service process
    webhook_max_attempts: int = Field(default=12, ge=1, le=100)
    webhook_retry_base_seconds: float = Field(default=2.0, gt=0)
    webhook_retry_cap_seconds: float = Field(default=3600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_batch_size: int = Field(default=50, ge=1, le=1000)
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    # Orders straight from the shop's frontend: the secret the shop's backend signs order
    # intents with, and the web origins allowed to post them (comma-separated).
    shop_intent_secret: SecretStr | None = None
    shop_allowed_origins: CsvStr = None
    # Where the buyer lands after the payment window; order_no and outcome are appended.
    shop_result_url: str | None = None
    # A source address with this many failed sign-ins or wrong bearer tokens within the
    # window (seconds, sliding) gets 429 until the oldest leaves it. Counted per process.
    auth_failure_limit: int = Field(default=10, ge=1, le=1000)
    auth_failure_window_seconds: float = Field(default=300.0, gt=0, le=86400)
    # Inbound bodies larger than this are refused before parsing (Payletter's are < 4 KiB).
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Daily reconciliation of yesterday (Korea time) at this Korea wall-clock time, "HH:MM";
    # "off" (or empty) disables it. See app/reconciliation/schedule.py.
    reconcile_daily_at: str = "04:30"

    @field_validator("reconcile_daily_at", mode="before")
    @classmethod
    def _daily_at(cls, value: object) -> str:
        text = str(value if value is not None else "").strip().lower()
        if text in ("", "off", "none", "false", "no", "disabled"):
            return "off"
        hour, sep, minute = text.partition(":")
        if (sep and hour.isdigit() and minute.isdigit() and len(minute) == 2
                and len(hour) <= 2 and int(hour) < 24 and int(minute) < 60):
            return f"{int(hour):02d}:{minute}"
        raise ValueError(f"{value!r} is not a Korea time of day as HH:MM (or off)")

    @field_validator("api_docs", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value  # compose passes unset variables as ""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("public_base_url", "payletter_base_url", "shop_result_url", "shop_webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _sim_stays_on_this_machine(self) -> Settings:
        # sim is also what a forgotten PAYLETTER_ENV means: with a real Payletter or a public
        # address it would go live with public demo tokens and loopback-trusting callbacks.
        if self.payletter_env != "sim":
            return self
        hosts = {"PAYLETTER_BASE_URL": urlsplit(self.api_base_url or "").hostname,
                 "PUBLIC_BASE_URL": urlsplit(self.public_base_url or "").hostname}
        off_machine = [f"{name} ({host or 'empty'})" for name, host in hosts.items()
                       if not is_loopback_host(host)]
        if off_machine:
            raise ConfigError(
                f"PAYLETTER_ENV=sim (the default when it is unset) is for the local simulator "
                f"only, but {' and '.join(off_machine)} "
                f"{'is' if len(off_machine) == 1 else 'are'} not this machine (loopback: "
                "127.0.0.0/8, ::1, localhost, *.localhost). In sim the tokens default to "
                "public demo values, the demo shop is served and callbacks are taken from "
                "loopback. Set PAYLETTER_ENV=test or live for a real Payletter or a public "
                "service; for the simulator, use loopback URLs")
        return self

    @model_validator(mode="after")
    def _tokens_not_shared(self) -> Settings:
        # A token in both lists is the ops role (it wins), so the shop could refund orders.
        if set(self.shop_tokens) & set(self.ops_tokens):
            raise ConfigError("SHOP_API_TOKEN and OPS_API_TOKEN share a token: the shop would "
                              "hold the operators' rights. Give each its own tokens")
        return self

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        if self.payletter_env == "sim":
            return self
        required: dict[str, str | None] = {
            "SHOP_API_TOKEN": _reveal(self.shop_api_token),
            "OPS_API_TOKEN": _reveal(self.ops_api_token),
        }
        if self.payletter_env == "live":
            required |= {
                "PAYLETTER_CLIENT_ID": self.payletter_client_id,
                "PAYLETTER_PAYMENT_KEY": _reveal(self.payletter_payment_key),
                "PAYLETTER_SEARCH_KEY": _reveal(self.payletter_search_key),
            }
        if self.shop_webhook_url:
            required["SHOP_WEBHOOK_SECRET"] = _reveal(self.shop_webhook_secret)
        for name in ("SHOP_API_TOKEN", "OPS_API_TOKEN"):
            tokens = split_tokens(required.pop(name))
            if not tokens or any(is_placeholder(token) for token in tokens):
                required[name] = None
        for name, value in required.items():
            if is_placeholder(value):
                raise ConfigError(
                    f"{name} is missing or a placeholder; PAYLETTER_ENV={self.payletter_env} "
                    "needs a real value (see .env.example)"
                )
        for name, tokens in (("SHOP_API_TOKEN", self.shop_tokens),
                             ("OPS_API_TOKEN", self.ops_tokens)):
            short = [str(n) for n, token in enumerate(tokens, 1)
                     if len(token) < MIN_TOKEN_LENGTH]
            if short:  # which one by position only: the message goes to logs
                which = (name if len(tokens) == 1 else
                         f"{name}: token {', '.join(short)} of {len(tokens)}")
                raise ConfigError(
                    f"{which} is shorter than {MIN_TOKEN_LENGTH} characters; "
                    f"PAYLETTER_ENV={self.payletter_env} needs long random tokens, e.g. "
                    "python -c \"import secrets; print(secrets.token_urlsafe(32))\"")
        if self.payletter_env == "live" and self.payletter_client_id == "pay_test":
            raise ConfigError("PAYLETTER_CLIENT_ID=pay_test is the public test merchant; not live")
        return self

    # ---- derived values -------------------------------------------------------------

    @cached_property
    def api_base_url(self) -> str:
        return self.payletter_base_url or BASE_URLS[self.payletter_env]

    @cached_property
    def primary_merchant(self) -> MerchantCredentials:
        defaults = PUBLIC_TEST_MERCHANT if self.payletter_env != "live" else {}
        client_id = self.payletter_client_id or defaults.get("client_id")
        payment = _reveal(self.payletter_payment_key) or defaults.get("payment_key")
        search = _reveal(self.payletter_search_key) or defaults.get("search_key")
        if not client_id or not payment or not search:  # unreachable after _check_secrets
            raise ConfigError("PAYLETTER_CLIENT_ID / PAYMENT_KEY / SEARCH_KEY are required")
        return MerchantCredentials(
            client_id=client_id, payment_key=SecretStr(payment), search_key=SecretStr(search)
        )

    @cached_property
    def merchants(self) -> dict[str, MerchantCredentials]:
        """All merchant profiles by client_id; the primary one comes first."""
        profiles = {self.primary_merchant.client_id: self.primary_merchant}
        if not self.payletter_merchants:
            return profiles
        try:
            extra: Any = json.loads(self.payletter_merchants)
            if not isinstance(extra, list):
                raise TypeError("not a list")
            for item in extra:
                profile = MerchantCredentials.model_validate(item)
                profiles.setdefault(profile.client_id, profile)
        except (ValueError, TypeError, ValidationError) as exc:
            raise ConfigError(
                "PAYLETTER_MERCHANTS must be a JSON list of "
                '{"client_id", "payment_key", "search_key"} objects'
            ) from exc
        return profiles

    @cached_property
    def callback_networks(self) -> tuple[Network, ...]:
        raw = self.payletter_callback_ips
        if raw is None:
            raw = CALLBACK_IPS[self.payletter_env]
        return parse_networks(raw, "PAYLETTER_CALLBACK_IPS")

    @property
    def pool_options(self) -> dict[str, int]:
        """The PostgreSQL pool's sizes for `app.db.create_engine` (SQLite ignores them)."""
        return {"pool_size": self.database_pool_size,
                "max_overflow": self.database_max_overflow}

    @cached_property
    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies, "TRUSTED_PROXIES")

    @cached_property
    def shop_tokens(self) -> tuple[str, ...]:
        """Every accepted shop token: "new,old" during a rotation."""
        return split_tokens(_reveal(self.shop_api_token)) or (SIM_SHOP_TOKEN,)

    @cached_property
    def ops_tokens(self) -> tuple[str, ...]:
        return split_tokens(_reveal(self.ops_api_token)) or (SIM_OPS_TOKEN,)

    @cached_property
    def public_base(self) -> str:
        return self.public_base_url.rstrip("/")

    def startup_warnings(self) -> list[str]:
        warnings: list[str] = []
        port = urlsplit(self.public_base_url).port
        if self.payletter_env == "test" and port not in (None, 80, 443):
            warnings.append(
                f"PUBLIC_BASE_URL uses port {port}: Payletter's test servers call back only on "
                "ports 80 and 443, so callbacks will not arrive unless Payletter opens this port"
            )
        return warnings

    @cached_property
    def intent_secret(self) -> str | None:
        """The order-intent key; in sim a public demo one, elsewhere only if configured."""
        secret = _reveal(self.shop_intent_secret)
        if secret:
            return secret
        return SIM_INTENT_SECRET if self.payletter_env == "sim" else None

    @cached_property
    def allowed_origins(self) -> tuple[str, ...]:
        origins = tuple(o.strip().rstrip("/") for o in (self.shop_allowed_origins or "")
                        .split(",") if o.strip())
        for origin in origins:
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in ("http", "https") or not parts.hostname
                                  or parts.path or parts.query):
                raise ConfigError(f"SHOP_ALLOWED_ORIGINS: {origin!r} is not an origin "
                                  "(scheme://host[:port], no path)")
        return origins

    @cached_property
    def webhook_secret(self) -> str | None:
        return _reveal(self.shop_webhook_secret) or None

    def validate_all(self) -> None:
        """Touch every derived value so a bad setting fails at start-up, not on first use."""
        _ = (self.merchants, self.callback_networks, self.trusted_proxy_networks,
             self.allowed_origins)
        intent = _reveal(self.shop_intent_secret)
        if intent and self.payletter_env != "sim" and (
                is_placeholder(intent) or len(intent) < 16):
            raise ConfigError("SHOP_INTENT_SECRET must be a real secret of 16+ characters")
        metrics = split_tokens(_reveal(self.metrics_token))
        if self.payletter_env != "sim" and any(is_placeholder(t) or len(t) < 16
                                               for t in metrics):
            raise ConfigError("METRICS_TOKEN must be a real secret of 16+ characters "
                              "(or empty: /metrics open, keep it internal)")
        if self.shop_webhook_url:
            if not self.webhook_secret:
                raise ConfigError("SHOP_WEBHOOK_URL is set but SHOP_WEBHOOK_SECRET is not")
            try:
                secret_key(self.webhook_secret)
            except ValueError as exc:
                raise ConfigError(f"SHOP_WEBHOOK_SECRET: {exc}") from None


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def load_settings() -> Settings:
    """Read the environment; raise ConfigError with the variable's name on bad config."""
    try:
        settings = Settings()
    except ValidationError as exc:
        # pydantic wraps errors from validators; surface ours unchanged.
        for error in exc.errors():
            ctx_error = (error.get("ctx") or {}).get("error")
            if isinstance(ctx_error, ConfigError):
                raise ctx_error from None
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigError(f"{name}: {first['msg']}") from None
    settings.validate_all()
    for warning in settings.startup_warnings():
        log.warning(warning)
    return settings
