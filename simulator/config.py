"""Simulator settings and the merchants it knows."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class KeyType(StrEnum):
    """Payletter issues two API keys per merchant; each call accepts only one type."""

    PAYMENT = "PAYMENT"
    SEARCH = "SEARCH"


@dataclass(frozen=True)
class Merchant:
    client_id: str
    payment_key: str
    search_key: str
    # auto_test1-style merchants may register a billkey with amount 0 (no money moves).
    zero_amount_registration: bool = False
    name: str = ""

    @property
    def display_name(self) -> str:
        return self.name or self.client_id


# The vendor page publishes these test merchants and keys; they are not secrets.
DEFAULT_MERCHANTS: tuple[Merchant, ...] = (
    Merchant(
        client_id="pay_test",
        payment_key="MTFBNTAzNTEwNDAxQUIyMjlCQzgwNTg1MkU4MkZENDA=",
        search_key="MUI3MjM0RUExQTgyRDA1ODZGRDUyOEM4OTY2QTVCN0Y=",
        name="페이레터 테스트",
    ),
    Merchant(
        client_id="auto_test",
        payment_key="NDBBREM2RjhEMENBQ0ZGODZDNkEyNEQxQUIxRTY5QUE=",
        search_key="QjBCMjZBNUNBMEMzRDVDNzY2NkQ2OTU3QzFEQkM2QkY=",
        name="자동결제 테스트",
    ),
    Merchant(
        client_id="auto_test1",
        payment_key="NUMzRDJFQzVERkRBNTQzQjY1MkUzMTQ3NThFREU2Mzg=",
        search_key="QUI4MUEyOEYxQTZFMTAxQjE4NjY3M0I5MjBDMzk1OEM=",
        zero_amount_registration=True,
        name="자동결제(0원) 테스트",
    ),
)


@dataclass(frozen=True)
class SimConfig:
    public_url: str = "http://127.0.0.1:8001"
    callback_interval: float = 300.0
    callback_max_attempts: int = 20
    callback_timeout: float = 10.0
    callback_source_address: str | None = None
    merchants: tuple[Merchant, ...] = field(default=DEFAULT_MERCHANTS)
    # Test-environment tids start with "t" (e.g. "tpay_test-201808162396515").
    tid_prefix: str = "t"

    def __post_init__(self) -> None:
        # Accept a list too; store an immutable tuple and a URL without trailing slash.
        object.__setattr__(self, "merchants", tuple(self.merchants))
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        if self.callback_max_attempts < 1:
            raise ValueError("callback_max_attempts must be at least 1")
        if self.callback_interval < 0 or self.callback_timeout <= 0:
            raise ValueError("callback_interval must be >= 0 and callback_timeout > 0")
        ids = [m.client_id for m in self.merchants]
        if len(ids) != len(set(ids)):
            raise ValueError("merchant client_ids must be unique")

    def merchant(self, client_id: str) -> Merchant | None:
        return next((m for m in self.merchants if m.client_id == client_id), None)

    def key_owner(self, api_key: str) -> tuple[Merchant, KeyType] | None:
        """Which merchant a key belongs to, and whether it is its PAYMENT or SEARCH key."""
        for merchant in self.merchants:
            if api_key == merchant.payment_key:
                return merchant, KeyType.PAYMENT
            if api_key == merchant.search_key:
                return merchant, KeyType.SEARCH
        return None
