"""Rooms: the presenter's latest view, kept once and pushed to every follower when it changes.

The presenter's events run in Gradio's worker threads; followers wait on the server's event loop. A change is
encoded once, as one server-sent event, and every follower's stream writes those same bytes: a room of any size
costs one encoding per change, and no model run or queued event per follower.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

# Rooms the server holds at once: a room ends when its presenter closes it or leaves.
MAX_ROOMS = 64
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

    def __init__(self, code: str, owner: str):
        self.code, self.owner = code, owner
        self.key = secrets.token_urlsafe(16)  # the presenter's: the views shown to the room come with it
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
    """The server's open rooms, by their unguessable code; each presenter's session owns at most one."""

    def __init__(self, capacity: int = MAX_ROOMS):
        self.capacity = capacity
        self._rooms: dict[str, Room] = {}
        self._lock = threading.Lock()

    def open(self, owner: str) -> Room:
        """The room this presenter's session owns, opened if it has none; ValueError when the server is full."""
        with self._lock:
            owned = next((room for room in self._rooms.values() if room.owner == owner), None)
            if owned is not None:
                return owned
            if len(self._rooms) >= self.capacity:
                raise ValueError(f"The server holds {self.capacity} rooms, its limit; try again when one has closed.")
            room = Room(secrets.token_urlsafe(16), owner)
            self._rooms[room.code] = room
            return room

    def get(self, code: str) -> Room | None:
        """The open room with this code, if any."""
        return self._rooms.get(code)

    def presented(self, key: str) -> Room | None:
        """The open room whose presenter holds this key, if any."""
        return next((room for room in list(self._rooms.values()) if secrets.compare_digest(room.key, key)), None)

    def close_owned_by(self, owner: str) -> None:
        """End the room this presenter's session owns, if any."""
        with self._lock:
            rooms = [room for room in self._rooms.values() if room.owner == owner]
            for room in rooms:
                del self._rooms[room.code]
        for room in rooms:
            room.close()
