"""The HTTP service: the standard library's `ThreadingHTTPServer` (a thread per connection, bounded by
`max_connections`) in front of the admission queue (`jobs.JobQueue`) and the judging pool.

    POST /run_code   SandboxFusion's request/response (runcode.py): run one program on stdin
    POST /judge      {"problem": Problem record, "completions": [str, ...], "sample_index": 0}
                     -> {"verdicts": [Verdict record, ...]} in the order of the completions
    GET  /v1/ping    "pong" (SandboxFusion's liveness probe); GET /stats: queue, counters, server RSS

Every refusal is decided before any work: 401 (token), 411/413 (size, read from Content-Length before the
body), 422 (a record that fails validation, as SandboxFusion's FastAPI answers), 429 + Retry-After (queue
full), 503 + Retry-After (too many connections). While a request waits for its verdicts its connection is
watched: a client that goes away, or a request past `request_timeout_s` (504), has its queued jobs dropped.
"""
from __future__ import annotations

import hmac
import json
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from sandbox.base.errors import RecordError
from sandbox.languages import PlanError
from sandbox.pool import Sandbox
from sandbox.registry import language, problem_from_record
from sandbox.serve.config import ServeConfig
from sandbox.serve.jobs import JobQueue, QueueFull, Ticket
from sandbox.serve.runcode import RequestError, parse_request, response

WATCH_S = 0.25  # how often a waiting request looks at its connection


class HTTPError(Exception):
    def __init__(self, code: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.headers = code, message, headers or {}


def rss_kib(pid: str = "self") -> dict:
    """The process's resident memory now and at its peak (KiB), from /proc."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client's pool of connections is reused
    server_version = "rrtf-sandbox"
    disable_nagle_algorithm = True  # headers and body go in two writes: without TCP_NODELAY the body waits ~40 ms for an ACK
    server: Server

    def setup(self) -> None:
        self.timeout = self.server.config.idle_timeout_s  # a client that stalls while sending is cut off
        super().setup()

    def log_request(self, code="-", size="-") -> None:  # one line per request would cost more than a small job
        pass

    def log_error(self, format: str, *args) -> None:
        sys.stderr.write(f"serve: {self.address_string()} {format % args}\n")

    # -- plumbing ---------------------------------------------------------------------------------
    def _send(self, code: int, body, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self, query: dict) -> bool:
        token = self.server.config.token
        if not token:
            return True
        given = self.headers.get("Authorization", "")
        given = given[7:] if given.startswith("Bearer ") else query.get("token", [""])[0]
        return hmac.compare_digest(given.encode(), token.encode())

    def _body(self):
        if self.headers.get("Transfer-Encoding"):
            raise HTTPError(411, "send the body with a Content-Length (no chunked encoding)")
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise HTTPError(411, "Content-Length required")
        if int(length) > self.server.config.max_request_bytes:
            raise HTTPError(413, f"request body over {self.server.config.max_request_bytes} bytes")
        data = self.rfile.read(int(length))
        if len(data) != int(length):
            raise HTTPError(400, "request body shorter than its Content-Length")
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise HTTPError(400, f"body is not JSON: {str(exc)[:200]}") from None

    def _client_gone(self) -> bool:
        """The client closed its connection (it cannot send more before our answer: HTTP/1.1 without pipelining)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _wait(self, ticket: Ticket) -> None:
        queue = self.server.jobs
        deadline = time.monotonic() + self.server.config.request_timeout_s
        while not ticket.done.wait(WATCH_S):
            if self._client_gone():
                queue.cancel(ticket)
                self.close_connection = True
                raise ConnectionAbortedError
            if time.monotonic() > deadline:
                queue.cancel(ticket)
                raise HTTPError(504, f"not judged within {self.server.config.request_timeout_s} s")
        if ticket.error is not None:
            queue.cancel(ticket)
            raise HTTPError(422, f"problem: {ticket.error}")
        if ticket.cancelled:
            raise HTTPError(503, "server shutting down", {"Retry-After": 5})

    def _submit(self, ticket: Ticket) -> Ticket:
        if len(ticket.items) > self.server.config.queue_limit:  # could never be admitted: not worth retrying
            raise HTTPError(413, f"{len(ticket.items)} jobs in one request; the queue holds {self.server.config.queue_limit}")
        try:
            return self.server.jobs.submit(ticket)
        except QueueFull as exc:
            raise HTTPError(429, str(exc), {"Retry-After": exc.retry_after_s}) from None

    # -- endpoints --------------------------------------------------------------------------------
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/v1/ping":
            return self._send(200, "pong")
        if url.path != "/stats":
            return self._send(404, {"detail": "not found"})
        if not self._authorised(parse_qs(url.query)):
            return self._send(401, {"detail": "token required"}, {"WWW-Authenticate": "Bearer"})
        self._send(200, {**self.server.jobs.snapshot(), "connections": self.server.active, "rss_kib": rss_kib()})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        route = {"/run_code": self._run_code, "/judge": self._judge}.get(url.path)
        try:
            if route is None:
                self.close_connection = True  # its body is not read
                raise HTTPError(404, f"no endpoint {url.path}")
            if not self._authorised(parse_qs(url.query)):
                self.close_connection = True
                raise HTTPError(401, "token required: Authorization: Bearer TOKEN", {"WWW-Authenticate": "Bearer"})
            try:
                body = self._body()
            except HTTPError:
                self.close_connection = True
                raise
            self._send(200, route(body))
        except HTTPError as exc:
            self._send(exc.code, {"detail": exc.message}, exc.headers)
        except ConnectionAbortedError:
            pass  # the client is gone: nothing to answer
        except (RequestError, RecordError, PlanError) as exc:
            self._send(422, {"detail": str(exc)})
        except OSError:
            raise  # the connection itself failed: nothing can be answered (Server.handle_error says one line)
        except Exception as exc:  # noqa: BLE001 - a bug here must answer 500, not drop the connection silently
            self.log_error("internal error: %s: %s", type(exc).__name__, exc)
            self.close_connection = True
            self._send(500, {"detail": f"internal error: {type(exc).__name__}"})

    def _run_code(self, body) -> dict:
        c = self.server.config
        problem, code, limits = parse_request(body, c.sandbox, max_run_s=c.max_run_timeout_s, max_compile_s=c.max_compile_timeout_s,
                                              max_memory_mb=c.max_memory_mb, output_bytes=c.run_code_output_bytes)
        ticket = self._submit(Ticket([(problem, code, 0)], limits))
        self._wait(ticket)
        return response(ticket.verdicts[0], problem.language)

    def _judge(self, body) -> dict:
        if not isinstance(body, dict):
            raise RequestError("body: expected a JSON object")
        problem = problem_from_record(body.get("problem"), where="request")
        language(problem.language).validate(problem)
        completions = body.get("completions", [body["completion"]] if "completion" in body else None)
        if not isinstance(completions, list) or not all(isinstance(c, str) for c in completions):
            raise RequestError("completions: expected a list of strings (or completion: a string)")
        if len(completions) > self.server.config.max_completions:
            raise HTTPError(413, f"{len(completions)} completions in one request; at most {self.server.config.max_completions}")
        first = body.get("sample_index", 0)
        if type(first) is not int or first < 0:
            raise RequestError("sample_index: expected a non-negative integer")
        ticket = self._submit(Ticket([(problem, c, first + i) for i, c in enumerate(completions)], self.server.config.sandbox))
        self._wait(ticket)
        return {"verdicts": [v.to_record() for v in ticket.verdicts]}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # listen backlog: many clients connecting at once are not reset

    def __init__(self, config: ServeConfig, jobs: JobQueue):
        self.config, self.jobs, self.active = config, jobs, 0
        self._lock = threading.Lock()
        super().__init__((config.host, config.port), Handler)

    def process_request(self, request, client_address) -> None:
        with self._lock:
            full = self.active >= self.config.max_connections
            if not full:
                self.active += 1
        if full:  # answered here, without a thread: a connection flood costs no more than this
            try:
                request.settimeout(1)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # a client that went away mid-request: one line, not a traceback
            sys.stderr.write(f"serve: {client_address[0]}: {type(exc).__name__}: {exc}\n")
        else:
            super().handle_error(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self.active -= 1


class SandboxServer:
    """The pool, the admission queue and the HTTP server, started and stopped together.

        with SandboxServer(ServeConfig(port=0)) as srv:
            print(srv.url)
    """

    def __init__(self, config: ServeConfig):
        config.check()
        self.config = config
        self.sandbox = Sandbox(config.sandbox)
        self.jobs: JobQueue | None = None
        self.httpd: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        self.sandbox.start()
        self.jobs = JobQueue(self.sandbox, self.config.slots, self.config.queue_limit)
        try:
            self.httpd = Server(self.config, self.jobs)
        except OSError:
            self.close()
            raise
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="serve-http", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        if self.jobs is not None:
            self.jobs.close()
        self.sandbox.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
