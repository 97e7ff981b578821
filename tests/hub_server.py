"""A local HTTP server speaking the part of the Hugging Face hub's protocol that huggingface_hub's downloads use.

`hf_hub_download` sends HEAD and GET to /{repo}/resolve/{revision}/{file} and needs X-Repo-Commit, an ETag and
Content-Length; it resumes with a Range header, and reads the hub's errors from X-Error-Code (RepoNotFound,
EntryNotFound). `hf download REPO FILE...` first reads the repository's commit and file list under /api/models/.
Files are served from folders written in the test; every request is recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)$")
# What `hf download REPO FILE FILE...` (snapshot_download) asks first: the repository's commit, then its files.
API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?P<what>revision|tree)/(?P<revision>[^/]+)$")


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
        return [path.rsplit("/", 1)[1] for method, path in self.requests if method == "GET" and RESOLVE.match(path)]


class Handler(BaseHTTPRequestHandler):
    """HEAD and GET of /{repo}/resolve/{revision}/{file}, and the listings under /api/models/, as the hub answers."""

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
        if api := API.match(self.path.split("?")[0]):
            return self.listing(api["repo"], api["what"])
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

    def listing(self, repo: str, what: str) -> None:
        """The repository's commit and file names (revision), or each file's path, size and git blob id (tree)."""
        if repo not in self.hub.repos:
            return self.error(404, "RepoNotFound", "Repository not found")
        files = sorted(path for path in self.hub.repos[repo].iterdir() if path.is_file())
        if what == "revision":
            info = {"id": repo, "sha": self.hub.commit(repo), "siblings": [{"rfilename": f.name} for f in files]}
        else:
            info = [{"type": "file", "path": f.name, "size": f.stat().st_size, "oid": blob_id(f)} for f in files]
        body = json.dumps(info).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
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


def blob_id(path: Path) -> str:
    """A file's git blob id, as the hub's tree lists it."""
    body = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()


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
