"""A local HTTP server speaking the part of the Hugging Face hub's protocol that huggingface_hub's downloads use.

`hf_hub_download` sends HEAD and GET to /{repo}/resolve/{revision}/{file} and needs X-Repo-Commit, an ETag and
Content-Length; it resumes with a Range header, and reads the hub's errors from X-Error-Code (RepoNotFound,
EntryNotFound). Files are served from folders written in the test; every request is recorded.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)$")


@dataclass
class Hub:
    """What the server holds and how it behaves; tests change it between runs."""

    repos: dict[str, Path] = field(default_factory=dict)  # repo id -> folder of its files
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path), in order
    cut: set[str] = field(default_factory=set)  # files whose GET stops half-way, after which the server is down
    down: bool = False  # every connection is closed before an answer, as when the network is gone

    def commit(self, repo: str) -> str:
        """A 40-hex commit id of the repository, stable for the session."""
        return hashlib.sha1(repo.encode()).hexdigest()

    def gets(self) -> list[str]:
        """The file names fetched with GET so far."""
        return [path.rsplit("/", 1)[1] for method, path in self.requests if method == "GET"]


class Handler(BaseHTTPRequestHandler):
    """HEAD and GET of /{repo}/resolve/{revision}/{file}, as the hub answers them."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the hub; every answer carries Content-Length
    hub: Hub

    def handle_one_request(self):
        if self.hub.down:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        super().handle_one_request()

    def do_HEAD(self):
        self.answer(send_body=False)

    def do_GET(self):
        self.answer(send_body=True)

    def answer(self, send_body: bool) -> None:
        self.hub.requests.append((self.command, self.path))
        match = RESOLVE.match(self.path.split("?")[0])
        if match is None:
            return self.error(404, "RepoNotFound", "Repository not found")
        repo, name = match["repo"], match["file"]
        if repo not in self.hub.repos:
            return self.error(404, "RepoNotFound", "Repository not found")
        path = self.hub.repos[repo] / name
        if not path.is_file():
            return self.error(404, "EntryNotFound", f"{name} does not exist", commit=self.hub.commit(repo))
        body = path.read_bytes()
        start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0]) if self.headers["Range"] else 0
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", self.hub.commit(repo))
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Disposition", f'inline; filename="{Path(name).name}"')  # the bar's label
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        if not send_body:
            return None
        if name in self.hub.cut:  # half the file, then the connection and the network are gone
            self.wfile.write(body[start : start + (len(body) - start) // 2])
            self.wfile.flush()
            self.hub.down = True
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        self.wfile.write(body[start:])
        return None

    def error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
        body = message.encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args):  # the requests are recorded in Hub.requests instead
        pass


class HubServer:
    """The server on a free loopback port, in a thread: `with HubServer(hub) as url:`."""

    def __init__(self, hub: Hub):
        handler = type("BoundHandler", (Handler,), {"hub": hub})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
