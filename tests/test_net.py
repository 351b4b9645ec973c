"""Who is calling: the socket peer, and X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

from app.kit.net import client_address, parse_ip
from app.settings import parse_networks

PROXIES = parse_networks("127.0.0.5, 127.0.1.0/24", "TRUSTED_PROXIES")


def test_without_trusted_proxies_the_peer_is_the_caller_whatever_xff_says() -> None:
    assert str(client_address("127.0.0.9", ["121.254.205.166"], ())) == "127.0.0.9"


def test_a_trusted_proxy_forwards_the_rightmost_untrusted_hop() -> None:
    got = client_address("127.0.0.5", ["6.6.6.6, 121.254.205.166, 127.0.1.7"], PROXIES)
    assert str(got) == "121.254.205.166"


def test_xff_spoofed_by_an_untrusted_peer_is_ignored() -> None:
    got = client_address("127.0.0.9", ["121.254.205.166"], PROXIES)
    assert str(got) == "127.0.0.9"


def test_several_xff_headers_are_read_as_one_chain() -> None:
    got = client_address("127.0.0.5", ["1.2.3.4", "121.254.205.166"], PROXIES)
    assert str(got) == "121.254.205.166"


def test_a_garbled_hop_proves_nothing() -> None:
    assert client_address("127.0.0.5", ["121.254.205.166, garbage"], PROXIES) is None


def test_ipv4_mapped_ipv6_peers_are_seen_as_ipv4() -> None:
    assert str(parse_ip("::ffff:121.254.205.166")) == "121.254.205.166"
    assert str(parse_ip("[::1]")) == "::1"
    assert parse_ip("not an address") is None
