"""A real webhook receiver on loopback: an HTTP server in a thread that keeps every request, headers and all."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Answers each POST with `status` (or `answer(path, headers, body) -> (status, extra headers)`); keeps them."""

    def __init__(self, status=200, answer=None):
        self.status, self.answer = status, answer
        self.requests: list[tuple[str, dict, bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {key.lower(): value for key, value in self.headers.items()}
                with receiver._lock:
                    receiver.requests.append((self.path, headers, body))
                status, extra = receiver.answer(self.path, headers, body) if receiver.answer else (receiver.status, {})
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self) -> list[str]:
        with self._lock:
            return [headers["webhook-id"] for _, headers, _ in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
