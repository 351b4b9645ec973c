"""Settings: per-environment defaults, merchant profiles, refusing unsafe start-up."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from app.settings import ConfigError, Settings, load_settings

ENV_VARS = (
    "DATABASE_URL", "PAYLETTER_ENV", "PAYLETTER_BASE_URL", "PAYLETTER_CLIENT_ID",
    "PAYLETTER_PAYMENT_KEY", "PAYLETTER_SEARCH_KEY", "PAYLETTER_MERCHANTS",
    "PAYLETTER_CALLBACK_IPS", "TRUSTED_PROXIES", "PUBLIC_BASE_URL", "SHOP_API_TOKEN",
    "OPS_API_TOKEN", "SHOP_WEBHOOK_URL", "SHOP_WEBHOOK_SECRET",
)

LONG_SHOP = "shop-0123456789abcdef0123456789abcdef"  # 32+ characters, as test/live need
LONG_OPS = "ops-0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_sim_needs_no_configuration_and_talks_to_the_local_simulator() -> None:
    s = load_settings()
    assert s.payletter_env == "sim"
    assert s.api_base_url == "http://127.0.0.1:8001/"
    assert s.database_url == "sqlite+aiosqlite:///./var/gateway.db"
    assert s.primary_merchant.client_id == "pay_test"
    assert ipaddress.ip_address("127.0.0.2") in s.callback_networks[0]
    assert s.public_base == "http://127.0.0.1:8000"


def test_test_env_defaults_to_the_vendor_test_host_and_callback_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYLETTER_ENV", "test")
    monkeypatch.setenv("SHOP_API_TOKEN", "a-real-shop-token-0123456789abcdef")
    monkeypatch.setenv("OPS_API_TOKEN", "a-real-ops-token-0123456789abcdef")
    s = load_settings()
    assert s.api_base_url == "https://testpgapi.payletter.com/"
    assert [str(n) for n in s.callback_networks] == ["121.254.205.166/32"]
    assert s.primary_merchant.payment_key.get_secret_value().startswith("MTFBNTAz")


def test_live_env_defaults_to_the_three_live_callback_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "PAYLETTER_ENV": "live", "SHOP_API_TOKEN": "s" * 32, "OPS_API_TOKEN": "o" * 32,
        "PAYLETTER_CLIENT_ID": "myshop", "PAYLETTER_PAYMENT_KEY": "cGF5bWVudC1rZXk=",
        "PAYLETTER_SEARCH_KEY": "c2VhcmNoLWtleQ==",
    }.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert s.api_base_url == "https://pgapi.payletter.com/"
    assert {str(n.network_address) for n in s.callback_networks} == {
        "211.115.72.37", "211.115.72.38", "211.115.117.11"}


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"PAYLETTER_ENV": "test", "OPS_API_TOKEN": "ops-token-real"}, "SHOP_API_TOKEN"),
        ({"PAYLETTER_ENV": "test", "SHOP_API_TOKEN": "shop-token-real",
          "OPS_API_TOKEN": "changeme"}, "OPS_API_TOKEN"),
        ({"PAYLETTER_ENV": "live", "SHOP_API_TOKEN": "shop-token-real",
          "OPS_API_TOKEN": "ops-token-real", "PAYLETTER_CLIENT_ID": "myshop",
          "PAYLETTER_SEARCH_KEY": "c2VhcmNo"}, "PAYLETTER_PAYMENT_KEY"),
        ({"PAYLETTER_ENV": "live", "SHOP_API_TOKEN": "shop-token-real",
          "OPS_API_TOKEN": "ops-token-real", "PAYLETTER_PAYMENT_KEY": "cGF5",
          "PAYLETTER_SEARCH_KEY": "c2VhcmNo"}, "PAYLETTER_CLIENT_ID"),
        ({"PAYLETTER_ENV": "test", "SHOP_API_TOKEN": "shop-token-real",
          "OPS_API_TOKEN": "ops-token-real", "SHOP_WEBHOOK_URL": "https://shop.example/hook",
          "SHOP_WEBHOOK_SECRET": "<your secret>"}, "SHOP_WEBHOOK_SECRET"),
    ],
)
def test_outside_sim_a_missing_or_placeholder_secret_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], missing: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=missing):
        load_settings()


def test_several_merchant_profiles_are_chosen_by_client_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "PAYLETTER_MERCHANTS",
        '[{"client_id": "auto_test", "payment_key": "NDBBREM2", "search_key": "QjBCMjZB"}]',
    )
    s = load_settings()
    assert list(s.merchants) == ["pay_test", "auto_test"]
    assert s.merchants["auto_test"].payment_key.get_secret_value() == "NDBBREM2"


def test_malformed_merchant_list_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYLETTER_MERCHANTS", '{"client_id": "x"}')
    with pytest.raises(ConfigError, match="PAYLETTER_MERCHANTS"):
        load_settings()


def test_bad_address_list_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, not-an-ip")
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_settings()


def test_empty_trusted_proxies_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "")
    assert load_settings().trusted_proxy_networks == ()


def test_test_env_on_an_odd_port_warns_but_starts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in {"PAYLETTER_ENV": "test", "SHOP_API_TOKEN": "shop-token-real" * 3,
                        "OPS_API_TOKEN": "ops-token-real" * 3,
                        "PUBLIC_BASE_URL": "https://pay.example.com:8443"}.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING):
        load_settings()
    assert "ports 80 and 443" in caplog.text
    caplog.clear()
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://pay.example.com")
    with caplog.at_level(logging.WARNING):
        load_settings()
    assert "ports 80 and 443" not in caplog.text


def test_secrets_do_not_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_API_TOKEN", "very-secret-shop-token")
    monkeypatch.setenv("PAYLETTER_PAYMENT_KEY", "very-secret-payment-key")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert "very-secret" not in repr(s)
    assert "very-secret" not in repr(s.primary_merchant)


def test_two_tokens_are_valid_at_once_during_a_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYLETTER_ENV", "test")
    monkeypatch.setenv("SHOP_API_TOKEN", "shop-new-0123456789abcdef0123456789, "
                                         "shop-old-0123456789abcdef0123456789")
    monkeypatch.setenv("OPS_API_TOKEN", "ops-current-0123456789abcdef0123456789")
    s = load_settings()
    assert s.shop_tokens == ("shop-new-0123456789abcdef0123456789",
                             "shop-old-0123456789abcdef0123456789")
    assert s.ops_tokens == ("ops-current-0123456789abcdef0123456789",)


def test_a_placeholder_among_rotated_tokens_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYLETTER_ENV", "test")
    monkeypatch.setenv("SHOP_API_TOKEN", "shop-new-0123456789,changeme")
    monkeypatch.setenv("OPS_API_TOKEN", "ops-current-0123456789")
    with pytest.raises(ConfigError, match="SHOP_API_TOKEN"):
        load_settings()


def test_an_empty_intent_secret_means_intents_are_off_outside_sim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYLETTER_ENV", "test")
    monkeypatch.setenv("SHOP_API_TOKEN", LONG_SHOP)
    monkeypatch.setenv("OPS_API_TOKEN", LONG_OPS)
    monkeypatch.setenv("SHOP_INTENT_SECRET", "")
    assert load_settings().intent_secret is None
    monkeypatch.setenv("SHOP_INTENT_SECRET", "short")
    with pytest.raises(ConfigError, match="SHOP_INTENT_SECRET"):
        load_settings()


def test_allowed_origins_must_be_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_ALLOWED_ORIGINS", "https://shop.example, https://shop.example/pay")
    with pytest.raises(ConfigError, match="SHOP_ALLOWED_ORIGINS"):
        load_settings()


# -- sim by accident (audit item 7) ---------------------------------------------------------

REAL_MERCHANT = {"PAYLETTER_CLIENT_ID": "myshop", "PAYLETTER_PAYMENT_KEY": "cGF5bWVudC1rZXk=",
                 "PAYLETTER_SEARCH_KEY": "c2VhcmNoLWtleQ=="}


def test_sim_refuses_to_start_against_the_real_payletter_with_a_public_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PAYLETTER_ENV forgotten (sim, the default) on a real deployment: sim's public demo
    tokens and loopback callbacks must not go live, so start-up stops and says why."""
    for name, value in {"PAYLETTER_BASE_URL": "https://pgapi.payletter.com/",
                        "PUBLIC_BASE_URL": "https://pay.example.com", **REAL_MERCHANT}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    message = str(refused.value)
    for name in ("PAYLETTER_ENV", "PAYLETTER_BASE_URL", "pgapi.payletter.com"):
        assert name in message


@pytest.mark.parametrize("url", [
    "https://testpgapi.payletter.com/", "http://10.0.0.5:8001/", "http://0.0.0.0:8001/",
    "http://localhost.example.com/", "http://127.0.0.1.nip.io/", "http://[::ffff:8.8.8.8]/",
    "http://[fe80::1]/", "http://localhost@pgapi.payletter.com/",
])
def test_sim_refuses_a_payletter_base_url_off_this_machine(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("PAYLETTER_BASE_URL", url)
    with pytest.raises(ConfigError, match=r"PAYLETTER_BASE_URL.*PAYLETTER_ENV=test or live"):
        load_settings()


@pytest.mark.parametrize("url", ["https://pay.example.com", "http://192.168.0.10:8000",
                                 "http://gateway.test", "http://[2001:db8::1]:8000"])
def test_sim_refuses_a_public_base_url_off_this_machine(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", url)
    with pytest.raises(ConfigError, match=r"PUBLIC_BASE_URL.*PAYLETTER_ENV=test or live"):
        load_settings()


@pytest.mark.parametrize(("base", "public"), [
    ("http://localhost:8001/", "http://localhost:8000"),  # docker-compose.yml's sim values
    ("http://127.0.0.2:8001/", "http://127.0.0.1:8000"),
    ("http://[::1]:8001/", "http://[::1]:8000"),
    ("http://payletter.localhost/", "https://gateway.localhost"),
    ("http://SIM.LOCALHOST./", "http://localhost."),
])
def test_sim_runs_on_loopback_names_and_addresses(
    monkeypatch: pytest.MonkeyPatch, base: str, public: str
) -> None:
    monkeypatch.setenv("PAYLETTER_BASE_URL", base)
    monkeypatch.setenv("PUBLIC_BASE_URL", public)
    settings = load_settings()
    assert settings.payletter_env == "sim" and settings.api_base_url == base


def test_test_and_live_may_use_public_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"PAYLETTER_ENV": "live", "PUBLIC_BASE_URL": "https://pay.example.com",
                        "SHOP_API_TOKEN": "s" * 32, "OPS_API_TOKEN": "o" * 32,
                        **REAL_MERCHANT}.items():
        monkeypatch.setenv(name, value)
    assert load_settings().public_base == "https://pay.example.com"


# -- weak or shared tokens, trust too broad (audit item 8) ----------------------------------

@pytest.mark.parametrize("env", ["test", "live"])
@pytest.mark.parametrize(("shop", "ops", "named"), [
    ("s" * 31, LONG_OPS, "SHOP_API_TOKEN"),
    (LONG_SHOP, "o" * 31, "OPS_API_TOKEN"),
    (f"{LONG_SHOP},short-old-token-0123", LONG_OPS, "SHOP_API_TOKEN"),  # each rotated one
    (LONG_SHOP, f"short-new-0123456789,{LONG_OPS}", "OPS_API_TOKEN"),
], ids=["shop", "ops", "old-shop-in-rotation", "new-ops-in-rotation"])
def test_outside_sim_a_token_shorter_than_32_characters_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, env: str, shop: str, ops: str, named: str
) -> None:
    for name, value in {"PAYLETTER_ENV": env, "SHOP_API_TOKEN": shop, "OPS_API_TOKEN": ops,
                        **REAL_MERCHANT}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"{named}.*32 characters") as refused:
        load_settings()
    for token in (*shop.split(","), *ops.split(",")):
        assert token not in str(refused.value)  # the message never shows a token


@pytest.mark.parametrize("env", ["sim", "test", "live"])
def test_a_token_in_both_shop_and_ops_lists_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    """The shop would hold the operators' rights (the ops role wins a shared token)."""
    shared = "shared-0123456789abcdef0123456789abcdef"
    for name, value in {"PAYLETTER_ENV": env, "SHOP_API_TOKEN": f"{LONG_SHOP},{shared}",
                        "OPS_API_TOKEN": f"{shared},{LONG_OPS}", **REAL_MERCHANT}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="SHOP_API_TOKEN and OPS_API_TOKEN share") as refused:
        load_settings()
    assert shared not in str(refused.value)


def test_sim_still_takes_short_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_API_TOKEN", "e2e-shop-token")
    monkeypatch.setenv("OPS_API_TOKEN", "e2e-ops-token")
    assert load_settings().ops_tokens == ("e2e-ops-token",)


@pytest.mark.parametrize("env", ["sim", "test"])
@pytest.mark.parametrize("variable", ["TRUSTED_PROXIES", "PAYLETTER_CALLBACK_IPS"])
@pytest.mark.parametrize("broad", ["0.0.0.0/0", "::/0", "10.0.0.0/7", "128.0.0.0/1",
                                   "2001:db8::/31", "127.0.0.1, 0.0.0.0/0"])
def test_an_address_range_broader_than_8_or_32_bits_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, env: str, variable: str, broad: str
) -> None:
    """Anyone in a trusted range can forge X-Forwarded-For, or post callbacks."""
    for name, value in {"PAYLETTER_ENV": env, "SHOP_API_TOKEN": LONG_SHOP,
                        "OPS_API_TOKEN": LONG_OPS, variable: broad}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"{variable}: .* is too broad"):
        load_settings()


def test_ranges_of_8_and_32_bits_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32, 127.0.0.1")
    monkeypatch.setenv("PAYLETTER_CALLBACK_IPS", "127.0.0.0/8, ::1")
    settings = load_settings()
    assert [n.prefixlen for n in settings.trusted_proxy_networks] == [8, 32, 32]
    assert [n.prefixlen for n in settings.callback_networks] == [8, 128]


def test_a_placeholder_metrics_token_is_refused_outside_sim() -> None:
    base = {"payletter_env": "test", "shop_api_token": "s" * 8 + "-shop-token-0123456789abcdef",
            "ops_api_token": "o" * 8 + "-ops-token-0123456789abcdefg"}
    for weak in ("changeme", "short"):
        with pytest.raises(ConfigError, match="METRICS_TOKEN"):
            Settings(**base, metrics_token=weak).validate_all()
    Settings(**base, metrics_token="a-real-metrics-token-0001").validate_all()
