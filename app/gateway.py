"""What a request needs from the running service, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.payletter.client import PayletterClient
from app.payletter.models import MerchantCredentials
from app.settings import Settings


@dataclass
class Gateway:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    payletter: PayletterClient

    def merchant(self, client_id: str) -> MerchantCredentials | None:
        return self.settings.merchants.get(client_id)

    def payment_key(self, client_id: str) -> str | None:
        merchant = self.merchant(client_id)
        return merchant.payment_key.get_secret_value() if merchant else None
