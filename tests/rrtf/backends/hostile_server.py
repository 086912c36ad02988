"""A hostile OpenAI-compatible endpoint for the reliability tests, run as a real process:

    python hostile_server.py PORT MODE

MODE: oversized (a 5 MB answer to any request), surrogate (an answer with a lone surrogate escape),
invalid_json (200 with a body that is not JSON), silent (accepts, never answers), trickle (sends its headers, then
one byte every half second, for ever), flaky (503 for the
first two requests, then a good answer), ok (a good answer). Every request is counted in a line on
stdout ("REQUEST n"), so tests can tell how many calls were made.
"""
from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, MODE = int(sys.argv[1]), sys.argv[2]
COUNT = [0]


def answer(body: dict, text: str) -> bytes:
    key = "message" if "messages" in body else "text"
    choice = {"index": 0, key: {"role": "assistant", "content": text} if key == "message" else text, "finish_reason": "stop"}
    return json.dumps({"id": "x", "object": "text_completion", "choices": [choice]}).encode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # the backend's reachability check
        self.send_response(404)
        self.end_headers()

    def do_POST(self):
        COUNT[0] += 1
        print(f"REQUEST {COUNT[0]}", flush=True)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if MODE == "silent":
            time.sleep(3600)
            return
        if MODE == "trickle":  # every socket read gets a byte in time; the reply never ends
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(1 << 20))
            self.end_headers()
            while True:
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.5)
        status, data = 200, answer(body, "def f():\n    return 1\n")
        if MODE == "oversized":
            data = answer(body, "x" * (5 << 20))
        elif MODE == "surrogate":
            data = answer(body, "def f():\n    return 'A'\n").replace(b"'A'", b"'\\ud800'")
        elif MODE == "invalid_json":
            data = b"<html>502 from a proxy</html>"
        elif MODE == "flaky" and COUNT[0] <= 2:
            status, data = 503, b'{"detail": "overloaded"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
