"""The link a presenter shares with the room, and its QR code, drawn here as SVG (nothing is fetched)."""

from __future__ import annotations

import html
import io
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


def follow_link(request: gr.Request, code: str) -> str:
    """The address followers open: the presenter's page with the room's code."""
    return f"{page_address(request)}?follow={code}"


def qr_svg(link: str) -> str:
    """The link as a QR code, an inline SVG that scales to its box."""
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="svg", xmldecl=False, svgns=True, omitsize=True, border=2)
    return buffer.getvalue().decode()


def link_html(link: str, followers_hint: str, code: str, key: str) -> str:
    """The shared link, its QR code, and what followers will see; the room's code and its presenter's key ride on
    the root element, for the page's scripts (presence.js keeps the room alive with them)."""
    href = html.escape(link, quote=True)
    room = f'data-code="{html.escape(code, quote=True)}" data-key="{html.escape(key, quote=True)}"'
    return (
        f'<div class="room-link" {room}>'
        f'<div class="qr" role="img" aria-label="QR code of the link">{qr_svg(link)}</div>'
        f'<div><p>Open on a phone or laptop to follow this page live:</p><p><a href="{href}" target="_blank">'
        f"{html.escape(link)}</a></p><p>{html.escape(followers_hint)}</p></div></div>"
    )
