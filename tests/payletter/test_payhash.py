from __future__ import annotations

import hashlib
import hmac

import pytest

from app.payletter.payhash import compute_payhash, mask_payhash, verify_payhash

KEY = "MTFBNTAzNTEwNDAxQUIyMjlCQzgwNTg1MkU4MkZENDA="
USER_ID = "test_user_id"
TID = "tpay_test-201808162396515"
# Computed here, independently of the code under test: sha256(user_id + amount + tid + key).
EXPECTED = hashlib.sha256(f"{USER_ID}1000{TID}{KEY}".encode()).hexdigest().upper()


def test_compute_payhash_matches_independent_sha256_of_concatenated_fields() -> None:
    assert compute_payhash(USER_ID, 1000, TID, KEY) == EXPECTED


def test_compute_payhash_reproduces_the_vendor_callback_sample() -> None:
    # The vendor page's callback example, signed with the public pay_test PAYMENT key.
    vendor_sample = "9E078A29E6435959A07ED2E8415789234D18250434BAF2C185C2EF3012C77E92"
    assert compute_payhash(USER_ID, 1000, TID, KEY) == vendor_sample
    assert verify_payhash(vendor_sample, user_id=USER_ID, amount=1000, tid=TID, payment_key=KEY)


def test_compute_payhash_is_upper_case_hex_of_64_chars() -> None:
    value = compute_payhash(USER_ID, 1000, TID, KEY)
    assert len(value) == 64
    assert value == value.upper()
    int(value, 16)


def test_compute_payhash_writes_amount_in_plain_decimal() -> None:
    plain = hashlib.sha256(f"{USER_ID}1234567{TID}{KEY}".encode()).hexdigest().upper()
    assert compute_payhash(USER_ID, 1_234_567, TID, KEY) == plain


def test_compute_payhash_encodes_korean_user_id_as_utf8() -> None:
    expected = hashlib.sha256(f"테스터1000{TID}{KEY}".encode()).hexdigest().upper()
    assert compute_payhash("테스터", 1000, TID, KEY) == expected


@pytest.mark.parametrize("amount", [1000.0, True, "1000"])
def test_compute_payhash_refuses_non_int_amounts(amount: object) -> None:
    with pytest.raises(TypeError):
        compute_payhash(USER_ID, amount, TID, KEY)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "given", [EXPECTED, EXPECTED.lower(), EXPECTED[:32].lower() + EXPECTED[32:]]
)
def test_verify_payhash_accepts_any_letter_case(given: str) -> None:
    assert verify_payhash(given, user_id=USER_ID, amount=1000, tid=TID, payment_key=KEY)


@pytest.mark.parametrize(
    ("user_id", "amount", "tid", "key"),
    [
        ("other_user", 1000, TID, KEY),
        (USER_ID, 1001, TID, KEY),
        (USER_ID, 1000, TID + "0", KEY),
        (USER_ID, 1000, TID, "another-key"),
    ],
)
def test_verify_payhash_rejects_any_changed_field(
    user_id: str, amount: int, tid: str, key: str
) -> None:
    assert not verify_payhash(EXPECTED, user_id=user_id, amount=amount, tid=tid, payment_key=key)


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "",
        "z" * 64,
        EXPECTED[:-1],
        EXPECTED + "0",
        " " + EXPECTED[1:],
        EXPECTED[:-1] + "\n",
        "０" + EXPECTED[1:],  # a full-width digit is not hex
        "9E078A29",
    ],
)
def test_verify_payhash_returns_false_for_missing_or_malformed_values(garbage: str | None) -> None:
    assert not verify_payhash(garbage, user_id=USER_ID, amount=1000, tid=TID, payment_key=KEY)


def test_verify_payhash_compares_with_hmac_compare_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module payhash uses
    assert verify_payhash(EXPECTED, user_id=USER_ID, amount=1000, tid=TID, payment_key=KEY)
    assert len(calls) == 1


def test_mask_payhash_keeps_only_the_first_eight_characters() -> None:
    assert mask_payhash(EXPECTED) == EXPECTED[:8] + "…"
    assert EXPECTED[8:] not in mask_payhash(EXPECTED)


@pytest.mark.parametrize("missing", [None, ""])
def test_mask_payhash_of_nothing_is_empty(missing: str | None) -> None:
    assert mask_payhash(missing) == ""
