"""Fault-injection switches (POST /_sim/faults merges, DELETE clears)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The names the api_errors / api_delay switches use, one per Payletter call.
ENDPOINTS: tuple[str, ...] = (
    "payments/request",
    "payments/autopay",
    "payments/cancel",
    "payments/cancel/partial",
    "cashreceipt/issue",
    "payments/transaction/list",
    "payments/status",
    "receipt/info",
)


def _check_endpoints(names: dict[str, object] | None) -> None:
    unknown = sorted(set(names or {}) - set(ENDPOINTS))
    if unknown:
        raise ValueError(f"unknown endpoint(s) {unknown}; known: {list(ENDPOINTS)}")


class ApiErrorFault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: int = Field(500, ge=400, le=599)
    code: int = 999
    message: str = "Internal server error"
    shape: Literal["flat", "nested"] = "flat"
    times: int | None = Field(None, ge=1, description="answer this many calls, then stop")


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    drop_callbacks_for_orders: list[str] = Field(default_factory=list)
    drop_all_callbacks: bool = False
    duplicate_callbacks: int = Field(1, ge=1, le=100)
    callback_before_return: bool = False
    callback_delay: float = Field(0.0, ge=0)
    bad_payhash: bool = False
    callback_source_address: str | None = None
    api_errors: dict[str, ApiErrorFault] = Field(default_factory=dict)
    api_delay: dict[str, float] = Field(default_factory=dict)

    def drops(self, order_no: str) -> bool:
        return self.drop_all_callbacks or order_no in self.drop_callbacks_for_orders

    def take_api_error(self, endpoint: str) -> ApiErrorFault | None:
        """The error to answer on this call, counting down `times`."""
        fault = self.api_errors.get(endpoint)
        if fault is None:
            return None
        if fault.times is not None:
            if fault.times <= 1:
                del self.api_errors[endpoint]
            else:
                fault.times -= 1
        return fault


class FaultsPatch(BaseModel):
    """A partial update: fields left out stay as they are; api_errors/api_delay merge by
    endpoint (an endpoint set to null is removed)."""

    model_config = ConfigDict(extra="forbid")

    drop_callbacks_for_orders: list[str] | None = None
    drop_all_callbacks: bool | None = None
    duplicate_callbacks: int | None = Field(None, ge=1, le=100)
    callback_before_return: bool | None = None
    callback_delay: float | None = Field(None, ge=0)
    bad_payhash: bool | None = None
    callback_source_address: str | None = None
    api_errors: dict[str, ApiErrorFault | None] | None = None
    api_delay: dict[str, float | None] | None = None

    @field_validator("api_errors", "api_delay")
    @classmethod
    def _known_endpoints(cls, value: dict[str, object] | None) -> dict[str, object] | None:
        _check_endpoints(value)
        return value

    @field_validator("api_delay")
    @classmethod
    def _non_negative(cls, value: dict[str, float | None] | None) -> dict[str, float | None] | None:
        if value and any(v is not None and v < 0 for v in value.values()):
            raise ValueError("api_delay seconds must not be negative")
        return value

    def apply_to(self, faults: Faults) -> None:
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name == "api_errors":
                for endpoint, fault in (value or {}).items():
                    if fault is None:
                        faults.api_errors.pop(endpoint, None)
                    else:
                        faults.api_errors[endpoint] = fault
            elif name == "api_delay":
                for endpoint, seconds in (value or {}).items():
                    if seconds is None:
                        faults.api_delay.pop(endpoint, None)
                    else:
                        faults.api_delay[endpoint] = seconds
            elif value is None and name != "callback_source_address":
                continue  # null means "leave as is", except where null is a real value
            else:
                setattr(faults, name, value)
