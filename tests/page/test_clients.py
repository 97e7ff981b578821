"""Who is asking and how much: a client's address behind a proxy, requests per second, what one holds open."""

import threading
import time

from xlm_demo.page.clients import RateLimit, Refusal, Slots, client_address


def test_the_address_is_the_proxys_first_else_the_peers():
    assert client_address({"x-forwarded-for": "203.0.113.5, 10.0.0.2"}, "10.0.0.3") == "203.0.113.5"
    assert client_address({"x-forwarded-for": " 2001:db8::7 "}, "10.0.0.3") == "2001:db8::7"
    assert client_address({}, "127.0.0.1") == "127.0.0.1"
    assert client_address({"x-forwarded-for": ""}, None) == "unknown"


def test_a_client_gets_its_burst_then_its_rate_and_others_theirs():
    limit = RateLimit(per_second=20, burst=5)
    assert [limit.allow("a") for _ in range(6)] == [True] * 5 + [False]
    assert limit.allow("b")  # an address of its own
    time.sleep(0.11)  # two more at 20 a second
    assert [limit.allow("a") for _ in range(3)] == [True, True, False]


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
