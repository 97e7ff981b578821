"""The link a presenter shares with the room, and its QR code, drawn here as SVG (nothing is fetched)."""

from __future__ import annotations

import html
import io
import ipaddress
import os
import socket
from urllib.parse import urlsplit

import gradio as gr
import segno


def page_address(request: gr.Request) -> str:
    """The presenter's page as their browser reached it (scheme, host, path), without its query."""
    referer = request.headers.get("referer", "")
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"
    return f"http://{request.headers.get('host', '127.0.0.1')}/"


# Where this machine's route to a network leaves from; connecting a UDP socket picks the route and sends nothing.
ROUTE_PROBES = ("192.0.2.1", "10.255.255.255", "192.168.255.255")
TALK_COMMAND = "make talk"  # or xlm-demo talk: the server listens on the network (docs/reading.md)


def is_loopback(host: str) -> bool:
    """Whether a host name or address reaches this machine only: localhost, 127.x, ::1."""
    host = host.strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def opened_locally(host: str) -> bool:
    """Whether the presenter's page was opened at a name no other machine can use (0.0.0.0 too, as browsers allow)."""
    return is_loopback(host) or host.strip("[]") in ("0.0.0.0", "::")


def network_address() -> str | None:
    """This machine's address on its network, or None where it has none but loopback."""
    for probe in ROUTE_PROBES:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))
                address = udp.getsockname()[0]
        except OSError:
            continue
        if not is_loopback(address):
            return address
    return None


def follow_link(request: gr.Request, code: str, listening: str) -> tuple[str, str]:
    """The address followers open, the presenter's page with the room's code, and why other machines cannot open
    it (empty when they can): a page opened at a local name, on a server listening on every interface, is shared at
    the machine's network address."""
    parts = urlsplit(page_address(request))
    netloc, local = parts.netloc, opened_locally(parts.hostname or "")
    if local and not is_loopback(listening) and not os.environ.get("SPACE_ID"):
        address = network_address()
        if address is not None:
            netloc, local = address + (f":{parts.port}" if parts.port else ""), False
    link = f"{parts.scheme}://{netloc}{parts.path}?follow={code}"
    if not local:
        return link, ""
    if is_loopback(listening):
        return link, f"the server listens on this computer only. Stop it and start it with {TALK_COMMAND}."
    return link, "this computer has no network address. Join the room's network, then share again."


def qr_svg(link: str) -> str:
    """The link as a QR code, an inline SVG that scales to its box."""
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="svg", xmldecl=False, svgns=True, omitsize=True, border=2)
    return buffer.getvalue().decode()


def link_html(link: str, unreachable: str, followers_hint: str, code: str, key: str) -> str:
    """The shared link, its QR code, and what followers will see (or, where no other machine can reach the server,
    the command that fixes it); the room's code and its presenter's key ride on the root element, for the page's
    scripts (presence.js keeps the room alive with them)."""
    href = html.escape(link, quote=True)
    room = f'data-code="{html.escape(code, quote=True)}" data-key="{html.escape(key, quote=True)}"'
    warning = (
        f'<p class="unreachable">Phones cannot open this link: {html.escape(unreachable)}</p>' if unreachable else ""
    )
    return (
        f'<div class="room-link" {room}>'
        f'<div class="qr" role="img" aria-label="QR code of the link">{qr_svg(link)}</div>'
        f'<div>{warning}<p>Open on a phone or laptop to follow this page live:</p><p><a href="{href}" '
        f'target="_blank">{html.escape(link)}</a></p><p>{html.escape(followers_hint)}</p></div></div>'
    )
