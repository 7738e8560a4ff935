"""A real HTTP server for webhook tests: records what it receives and answers as told."""

import contextlib
import http.server
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Receiver:
    url: str
    received: list = field(default_factory=list)  #: (path, headers, body) in arrival order
    status: int = 200
    delay: float = 0.0  #: seconds before answering
    body: bytes = b"ok"
    location: str | None = None
    gate: threading.Event | None = None  #: when set, a request waits for it before answering


def serve():
    state = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            data = self.rfile.read(length)
            state.received.append((self.path, dict(self.headers), data))
            if state.gate is not None:
                state.gate.wait(30)
            if state.delay:
                time.sleep(state.delay)
            self.send_response(state.status)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(state.body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, state
