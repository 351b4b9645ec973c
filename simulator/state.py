"""Everything one simulator instance holds, reachable from any route as `sim(request)`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import httpx
from fastapi import Request

from simulator.callbacks import CallbackEngine, Delivery
from simulator.clock import SimClock
from simulator.config import Merchant, SimConfig
from simulator.faults import Faults
from simulator.results import callback_payload
from simulator.store import Payment, Store


@dataclass
class Simulator:
    config: SimConfig
    clock: SimClock
    store: Store
    faults: Faults
    callbacks: CallbackEngine

    @classmethod
    def build(
        cls, config: SimConfig, callback_transport: httpx.AsyncBaseTransport | None = None
    ) -> Simulator:
        clock = SimClock()
        store = Store(config.tid_prefix)
        holder: list[Simulator] = []
        engine = CallbackEngine(
            config=config,
            store=store,
            clock=clock,
            faults=lambda: holder[0].faults,  # read live: reset replaces the faults object
            transport=callback_transport,
        )
        sim = cls(config=config, clock=clock, store=store, faults=Faults(), callbacks=engine)
        holder.append(sim)
        return sim

    def merchant_for(self, payment: Payment) -> Merchant:
        merchant = self.config.merchant(payment.client_id)
        assert merchant is not None, "payments are only created for configured merchants"
        return merchant

    def send_callback(
        self, payment: Payment, *, copies: int | None = None, ignore_drops: bool = False,
        delay: float | None = None,
    ) -> list[Delivery]:
        """Build the callback JSON now (so bad_payhash applies) and start delivering it."""
        payload = callback_payload(
            payment, self.merchant_for(payment), corrupt_payhash=self.faults.bad_payhash
        )
        return self.callbacks.deliver(
            payment, payload, copies=copies, ignore_drops=ignore_drops, delay=delay
        )

    async def reset(self) -> None:
        await self.callbacks.cancel_all()
        self.store.reset()
        self.faults = Faults()
        self.clock.reset()


def sim(request: Request) -> Simulator:
    return cast(Simulator, request.app.state.sim)
