"""Rooms: the presenter's latest view, kept once and pushed to every follower when it changes.

The presenter's events run in Gradio's worker threads; followers wait on the server's event loop. A change is
encoded once, as one server-sent event, and every follower's stream writes those same bytes: a room of any size
costs one encoding per change, and no model run or queued event per follower.

A room lives while its presenter's page holds its presence stream open, and ends UNATTENDED seconds after the
last one closed (or after it opened, if none ever did): a session that shares without a page, as a script can,
holds a room no longer than that.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ..clients import RateLimit, Slots

# Rooms the server holds at once, sized by memory: a room holds at most a whole view and a continuation's record of
# a 20,000-character text (125 KB each, measured on the bundled model) and a comparison. A room ends when its
# presenter closes it or leaves.
ROOM_BYTES = 320 * 1024
ROOMS_MEMORY = 256 * 1024 * 1024
MAX_ROOMS = ROOMS_MEMORY // ROOM_BYTES  # 819
# Rooms one address may hold at once: a few presenters behind one network's address (a school, a conference).
ROOMS_PER_CLIENT = 4
# A room whose presenter's page is gone ends this long after (and within a minute, the reaper looking each second):
# a page's reconnection (a phone changing networks) takes a few seconds; a session without a page gets no longer.
UNATTENDED = 55.0  # seconds
# Followers' streams open at once, on the server and from one address: a hall of 2,000 behind one address (a
# conference's Wi-Fi, a mobile carrier) fits, and one address never holds more than a quarter of the server's.
MAX_FOLLOWERS = 10_000
FOLLOWERS_PER_CLIENT = MAX_FOLLOWERS // 4
# Requests to open or follow a room, from one address: that hall opening the link at once fits the burst.
ROOM_REQUESTS_PER_SECOND, ROOM_REQUESTS_BURST = 20.0, FOLLOWERS_PER_CLIENT
# A follower's stream sends a comment this often while nothing changes, so that proxies keep it open and a
# follower who left is noticed.
KEEP_ALIVE = 15.0  # seconds
# Followers are woken this long after a view is published, so that the presenter's own page, whose event published
# it, gets its answer first: writing to every follower's stream takes the server's event loop a few milliseconds.
PRESENTER_FIRST = 0.02  # seconds
CLOSED = b"event: closed\ndata: {}\n\n"


def server_sent(kind: str, data: bytes) -> bytes:
    """One server-sent event of a kind ("view", "compare") holding JSON."""
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


@dataclass(frozen=True)
class Message:
    """One server-sent event, and the room's version that published it (0: none yet)."""

    data: bytes = b""
    version: int = 0


class Room:
    """One presenter's page as followers see it: the latest whole view, the continuation's records since, the latest
    comparison, and the followers waiting for the next."""

    def __init__(self, code: str, owner: str, client: str = ""):
        self.code, self.owner, self.client = code, owner, client
        self.key = secrets.token_urlsafe(16)  # the presenter's own secret; followers know only the code
        self.present = 0  # the presenter's presence streams open now
        self.last_present = time.monotonic()  # when the last one closed (or the room opened)
        self.version = 0
        self.whole = Message()  # a view record with every span
        self.since = Message()  # a continuation's record, its spans from where it began: drawn after `whole`
        self.compared = Message()
        self.closed = False
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: set[asyncio.Future] = set()

    def show(self, record: bytes, whole: bool) -> None:
        """Show followers a view record (its JSON): a whole view, or a continuation's tokens since the last whole
        view (from any thread)."""
        with self._lock:
            if self.closed:
                return
            self.version += 1
            message = Message(server_sent("view", record), self.version)
            if whole:
                self.whole, self.since = message, Message()
            else:
                self.since = message
        self._wake()

    def show_compare(self, compared: dict) -> None:
        """Show followers the presenter's comparison of the language ids (its chart and summary)."""
        data = json.dumps(compared, ensure_ascii=False, separators=(",", ":")).encode()
        with self._lock:
            if self.closed:
                return
            self.version += 1
            self.compared = Message(server_sent("compare", data), self.version)
        self._wake()

    def close(self) -> None:
        """End the room: every follower is told, and no view is published again."""
        with self._lock:
            self.closed = True
        self._wake()

    def arrive(self) -> None:
        """The presenter's page opened a presence stream."""
        with self._lock:
            self.present += 1

    def leave(self) -> None:
        """A presence stream of the presenter's page closed."""
        with self._lock:
            self.present -= 1
            self.last_present = time.monotonic()

    def unattended_for(self, now: float) -> float:
        """Seconds since the presenter's page was last here; 0 while it is."""
        with self._lock:
            return 0.0 if self.present else now - self.last_present

    async def presence(self) -> AsyncIterator[bytes]:
        """The presenter's presence stream: keep-alive comments while the room is open, then its end."""
        while not self.closed:
            yield b": here\n\n"
            await asyncio.sleep(KEEP_ALIVE)
        yield CLOSED

    def _wake(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.call_later, PRESENTER_FIRST, self._release)

    def _release(self) -> None:
        """On the event loop: every waiting follower goes on to the latest message."""
        waiting, self._waiting = self._waiting, set()
        for future in waiting:
            if not future.done():
                future.set_result(None)

    def unseen(self, seen: int) -> tuple[list[bytes], int]:
        """The messages a follower who has seen up to version `seen` lacks, in order, and the version now."""
        with self._lock:
            messages = (self.whole, self.since, self.compared)
            return [m.data for m in messages if m.version > seen], self.version

    async def messages(self) -> AsyncIterator[bytes]:
        """A follower's stream: the view now, then each change (those that come while a follower's socket is busy
        are skipped to the latest), keep-alive comments, and the end when the room closes."""
        self._loop = asyncio.get_running_loop()
        seen = 0
        while True:
            unseen, seen = self.unseen(seen)
            for message in unseen:
                yield message
            if self.closed:
                yield CLOSED
                return
            future = self._loop.create_future()
            self._waiting.add(future)
            try:
                await asyncio.wait_for(future, KEEP_ALIVE)
            except asyncio.TimeoutError:  # Python 3.10 has its own, not the built-in one
                self._waiting.discard(future)
                yield b": keep-alive\n\n"


class Rooms:
    """The server's open rooms, by their unguessable code; each presenter's session owns at most one, each address
    at most `per_client`; a room unattended for `expiry` seconds ends. `followers` caps the open streams and
    `requests` the rate of Share and of joining, per address."""

    def __init__(
        self,
        capacity: int = MAX_ROOMS,
        per_client: int = ROOMS_PER_CLIENT,
        expiry: float = UNATTENDED,
        followers: Slots | None = None,
        requests: RateLimit | None = None,
    ):
        self.capacity, self.per_client, self.expiry = capacity, per_client, expiry
        self.followers = followers or Slots(FOLLOWERS_PER_CLIENT, MAX_FOLLOWERS, "followers' streams")
        self.requests = requests or RateLimit(ROOM_REQUESTS_PER_SECOND, ROOM_REQUESTS_BURST)
        self._rooms: dict[str, Room] = {}
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None

    def open(self, owner: str, client: str = "") -> Room:
        """The room this presenter's session owns, opened if it has none; ValueError when the server, or the
        address, holds all the rooms it may."""
        self.reap()
        with self._lock:
            owned = next((room for room in self._rooms.values() if room.owner == owner), None)
            if owned is not None:
                return owned
            if len(self._rooms) >= self.capacity:
                raise ValueError(f"The server holds {self.capacity} rooms, its limit; try again when one has closed.")
            if sum(room.client == client for room in self._rooms.values()) >= self.per_client:
                raise ValueError(
                    f"Your address holds {self.per_client} rooms, the most one address may; close one of them first."
                )
            room = Room(secrets.token_urlsafe(16), owner, client)
            self._rooms[room.code] = room
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap_while_open, name="room-reaper", daemon=True)
                self._reaper.start()
            return room

    def get(self, code: str) -> Room | None:
        """The open room with this code, if any."""
        return self._rooms.get(code)

    def presented(self, key: str) -> Room | None:
        """The open room whose presenter's key this is, if any."""
        return next(
            (room for room in list(self._rooms.values()) if secrets.compare_digest(room.key.encode(), key.encode())),
            None,
        )

    def close_owned_by(self, owner: str) -> None:
        """End the room this presenter's session owns, if any."""
        self._close(lambda room: room.owner == owner)

    def reap(self) -> None:
        """End every room unattended for longer than the expiry."""
        now = time.monotonic()
        self._close(lambda room: room.unattended_for(now) > self.expiry)

    def _close(self, ending) -> None:
        with self._lock:
            rooms = [room for room in self._rooms.values() if ending(room)]
            for room in rooms:
                del self._rooms[room.code]
        for room in rooms:
            room.close()

    def _reap_while_open(self) -> None:
        """The reaper's thread: reap often enough that a room ends within its expiry, until no room is open."""
        while True:
            time.sleep(min(1.0, self.expiry / 10))
            self.reap()
            with self._lock:
                if not self._rooms:
                    self._reaper = None
                    return
