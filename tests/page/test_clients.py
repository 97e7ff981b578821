"""Who is asking and how much: a client's address behind a proxy, requests per second, what one holds open."""

import threading
import time

import pytest

from xlm_demo.page.clients import RateLimit, Refusal, Slots, TrustedProxies

LOCAL = TrustedProxies.parse("127.0.0.1,::1")


def test_behind_a_trusted_proxy_the_client_is_the_rightmost_entry_that_is_no_proxy():
    assert LOCAL.client({"x-forwarded-for": "203.0.113.5"}, "127.0.0.1") == "203.0.113.5"
    # The client wrote the entries before the one its proxy appended: they are not believed.
    assert LOCAL.client({"x-forwarded-for": "10.9.9.9, 1.2.3.4, 203.0.113.5"}, "127.0.0.1") == "203.0.113.5"
    assert LOCAL.client({"x-forwarded-for": " 2001:db8::7 "}, "::1") == "2001:db8::7"
    assert LOCAL.client({"x-forwarded-for": "198.51.100.1"}, "::ffff:127.0.0.1") == "198.51.100.1"  # dual stack
    chain = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8")  # a balancer, then nginx on the machine
    assert chain.client({"x-forwarded-for": "6.6.6.6, 203.0.113.5, 10.0.0.2"}, "127.0.0.1") == "203.0.113.5"
    assert LOCAL.client({}, "127.0.0.1") == "127.0.0.1"  # the proxy's own request
    assert chain.client({"x-forwarded-for": "10.0.0.2"}, "127.0.0.1") == "127.0.0.1"  # proxies all the way


def test_from_any_other_peer_the_header_is_ignored():
    assert LOCAL.client({"x-forwarded-for": "203.0.113.5"}, "198.51.100.7") == "198.51.100.7"
    assert TrustedProxies.parse("").client({"x-forwarded-for": "203.0.113.5"}, "127.0.0.1") == "127.0.0.1"
    assert LOCAL.client({"x-forwarded-for": "203.0.113.5"}, None) == "unknown"


def test_on_a_space_every_peer_is_its_proxy_and_its_own_entry_is_the_rightmost(monkeypatch):
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.setenv("SPACE_ID", "someone/xlm-demo")
    space = TrustedProxies.where_served()
    assert space.client({"x-forwarded-for": "6.6.6.6, 203.0.113.5"}, "10.16.3.4") == "203.0.113.5"
    assert TrustedProxies.parse("*").client({"x-forwarded-for": "6.6.6.6, 203.0.113.5"}, "10.1.1.1") == "203.0.113.5"
    monkeypatch.delenv("SPACE_ID")
    assert TrustedProxies.where_served().client({"x-forwarded-for": "203.0.113.5"}, "10.16.3.4") == "10.16.3.4"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.16.0.0/12")
    assert TrustedProxies.where_served().client({"x-forwarded-for": "203.0.113.5"}, "10.16.3.4") == "203.0.113.5"
    assert TrustedProxies.where_served("192.0.2.1").client({"x-forwarded-for": "1.1.1.1"}, "10.16.3.4") == "10.16.3.4"


def test_a_proxy_that_is_no_address_is_named_in_one_sentence():
    with pytest.raises(ValueError, match="^--forwarded-allow-ips takes addresses and networks: .*'nginx'"):
        TrustedProxies.parse("127.0.0.1,nginx")


def test_a_client_gets_its_burst_then_its_rate_and_others_theirs():
    limit = RateLimit(per_second=20, burst=5)
    assert [limit.allow("a") for _ in range(6)] == [True] * 5 + [False]
    assert limit.allow("b")  # an address of its own
    time.sleep(0.11)  # two more at 20 a second
    assert [limit.allow("a") for _ in range(3)] == [True, True, False]


def test_a_client_that_waited_long_gets_its_burst_and_no_more():
    limit = RateLimit(per_second=50, burst=5)
    assert limit.allow("a")
    time.sleep(0.5)  # 25 requests' worth of waiting, capped at the burst
    assert [limit.allow("a") for _ in range(6)] == [True] * 5 + [False]


def test_the_rate_limit_remembers_a_bounded_number_of_clients_and_counts_every_thread():
    limit = RateLimit(per_second=0.001, burst=100, clients=50)
    for n in range(1000):
        limit.allow(f"198.51.100.{n}")
    assert len(limit._buckets) == 50
    allowed = []
    threads = [threading.Thread(target=lambda: allowed.extend(limit.allow("x") for _ in range(50))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 100


def test_slots_cap_each_client_then_the_server_and_come_back():
    slots = Slots(per_client=2, total=3, what="streams")
    assert slots.take("a") is None and slots.take("a") is None
    assert slots.take("a") == Refusal(429, "Your address holds 2 streams, the most one address may; close some.")
    assert slots.take("b") is None
    assert slots.take("c") == Refusal(503, "The server holds 3 streams, its limit; try again later.")
    slots.give_back("a")
    assert slots.held("a") == 1 and slots.held() == 2
    assert slots.take("c") is None
    for client in ("a", "b", "c"):
        slots.give_back(client)
    assert slots.held() == 0 and slots._held == {}
