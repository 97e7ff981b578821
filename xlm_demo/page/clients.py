"""Who is asking, and how much one of them may ask: a client's address, its requests per second, and what it holds
open at once. Any route or page event can use these; each cap is answered with one sentence."""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Clients whose request rate is remembered at once; beyond this the least recently seen is forgotten (it starts
# again with a full allowance), so that made-up addresses cannot grow the server's memory.
REMEMBERED_CLIENTS = 10_000
TOO_FAST = "Too many requests from your address; wait a few seconds and try again."
# The peers whose X-Forwarded-For is believed where none are named (as uvicorn's --forwarded-allow-ips): a proxy
# on the same machine, such as nginx in front of the demo.
LOCAL_PROXY = "127.0.0.1,::1"


@dataclass(frozen=True)
class TrustedProxies:
    """Which peers are proxies whose X-Forwarded-For is believed: the named addresses and networks, or every peer
    (a Hugging Face Space, whose proxy is the only way in)."""

    named: tuple[IPNetwork, ...] = ()
    every_peer: bool = False

    @classmethod
    def parse(cls, allowed: str) -> TrustedProxies:
        """From --forwarded-allow-ips: addresses and networks separated by commas; `*` for every peer. ValueError
        names an entry that is neither."""
        entries = [entry.strip() for entry in allowed.split(",") if entry.strip()]
        try:
            named = tuple(ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*")
        except ValueError as error:
            raise ValueError(f"--forwarded-allow-ips takes addresses and networks: {error}") from None
        return cls(named, every_peer="*" in entries)

    @classmethod
    def where_served(cls, allowed: str | None = None) -> TrustedProxies:
        """The rule for this server: the peers named (or FORWARDED_ALLOW_IPS, else the local proxy), and on a
        Space every peer."""
        named = cls.parse(allowed or os.environ.get("FORWARDED_ALLOW_IPS") or LOCAL_PROXY)
        return cls(named.named, named.every_peer or bool(os.environ.get("SPACE_ID")))

    def for_uvicorn(self) -> str:
        """The named proxies as uvicorn's FORWARDED_ALLOW_IPS, so that Gradio's server, which rewrites a trusted
        peer's address from X-Forwarded-For before any route sees it, believes no other (never `*`: uvicorn takes
        the leftmost entry from every peer)."""
        return ",".join(str(network) for network in self.named)

    def is_named(self, address: str) -> bool:
        """Whether this address is one of the named proxies."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        ip = getattr(ip, "ipv4_mapped", None) or ip  # ::ffff:127.0.0.1 from a dual-stack socket is 127.0.0.1
        return any(ip in network for network in self.named)

    def client(self, headers: Mapping[str, str], peer: str | None) -> str:
        """The address a request came from, as the nearest trusted proxy saw it: from a trusted peer, the rightmost
        X-Forwarded-For entry that is not a named proxy (the entries left of it are the client's own writing);
        from any other peer, the peer itself."""
        if peer is None:
            return "unknown"
        if not (self.every_peer or self.is_named(peer)):
            return peer
        hops = [hop.strip() for hop in headers.get("x-forwarded-for", "").split(",") if hop.strip()]
        outside = [hop for hop in hops if not self.is_named(hop)]
        return outside[-1] if outside else peer


def request_address(request, proxies: TrustedProxies) -> str:
    """The client's address of a Starlette Request or a gr.Request, by the server's trusted proxies."""
    return proxies.client(request.headers, request.client.host if request.client else None)


class RateLimit:
    """At most `per_second` requests a second from one client, with bursts of up to `burst` (a token bucket per
    client); thread-safe, and remembering at most `clients` of them."""

    def __init__(self, per_second: float, burst: int, clients: int = REMEMBERED_CLIENTS):
        self.per_second, self.burst, self.clients = per_second, burst, clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (allowance, when)
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        """Whether this client may make one more request now (and count it if so)."""
        now = time.monotonic()
        with self._lock:
            allowance, when = self._buckets.pop(client, (float(self.burst), now))
            allowance = min(float(self.burst), allowance + (now - when) * self.per_second)
            allowed = allowance >= 1.0
            self._buckets[client] = (allowance - 1.0 if allowed else allowance, now)
            if len(self._buckets) > self.clients:
                self._buckets.popitem(last=False)
            return allowed


@dataclass(frozen=True)
class Refusal:
    """Why a client may not take one more: the HTTP status and the sentence it is told."""

    status: int
    sentence: str


class Slots:
    """Things held open at once (a room's streams): at most `per_client` for one client and `total` for the
    server; thread-safe."""

    def __init__(self, per_client: int, total: int, what: str = "streams"):
        self.per_client, self.total, self.what = per_client, total, what
        self._held: dict[str, int] = {}
        self._count = 0
        self._lock = threading.Lock()

    def take(self, client: str) -> Refusal | None:
        """Hold one more for this client, or say why not (503 for the server's cap, 429 for the client's)."""
        with self._lock:
            if self._count >= self.total:
                return Refusal(503, f"The server holds {self.total:,} {self.what}, its limit; try again later.")
            if self._held.get(client, 0) >= self.per_client:
                return Refusal(
                    429, f"Your address holds {self.per_client:,} {self.what}, the most one address may; close some."
                )
            self._held[client] = self._held.get(client, 0) + 1
            self._count += 1
            return None

    def give_back(self, client: str) -> None:
        """One this client held has ended."""
        with self._lock:
            left = self._held.pop(client) - 1
            if left:
                self._held[client] = left
            self._count -= 1

    def held(self, client: str | None = None) -> int:
        """How many are held: by this client, or by all."""
        return self._count if client is None else self._held.get(client, 0)
