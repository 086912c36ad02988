"""Generation through any OpenAI-compatible endpoint (OpenAI, vLLM, TGI, `transformers serve`, ...).

Completions API for text requests (base models continue the prompt verbatim); chat API for requests
that carry messages, or for every request when `chat=True` (the prompt becomes the user turn, after
`system_prompt` if one is set).

Everything that comes back is hostile input until parsed: replies are read through httpx with a
byte cap (a 50 MB answer to a 64-token request is refused after `max_response_bytes`, counted and
logged, never held whole), parsed with errors caught, and checked for shape. Transient failures --
connection errors, timeouts, HTTP 408/409/425/429/5xx, replies that are not JSON -- are retried
`max_retries` times with exponential backoff; each wait is logged (and reported to `on_wait`, the
sampler's progress bar) so a silent server never looks like a hung run. Every error names the
endpoint and the model. A teacher is identified by model and decoding settings (`identity`), not by
URL, so moving a server to another port does not invalidate a finished run.

`n`: some servers (e.g. `transformers serve`) ignore it and return one choice; the backend then
asks for the missing samples one request at a time, each with its own seed, and remembers to do so.
Note: `transformers serve` only samples when the model's generation_config.json says
`do_sample: true`; pass `extra_body={"generation_config": json.dumps({...})}` to override per request.
"""
from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rrtf.backends.base import BACKENDS, GenerationBackend, GenerationRequest, SamplingParams, sample_seed

logger = logging.getLogger("rrtf.backends.openai")
MAX_SERVER_STOPS = 4  # the OpenAI API accepts at most 4 stop strings; the rest are applied locally
TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class EndpointError(RuntimeError):
    """The endpoint answered, but not usefully (rejected the request, or replied garbage)."""


class _Transient(Exception):
    pass


@BACKENDS.register("openai")
class OpenAIBackend(GenerationBackend):
    spec_kinds = ("openai", "openai-chat")
    can_sample_student = True

    def __init__(self, base_url: str, model: str, *, chat: bool = False, api_key: str | None = None,
                 system_prompt: str | None = None, timeout: float = 60.0, max_retries: int = 3, concurrency: int = 8,
                 extra_body: dict | None = None, check: bool = True, max_response_bytes: int | None = None,
                 on_wait: Callable[[str], None] | None = None, precision: str = "server"):
        """base_url: e.g. "http://127.0.0.1:8000/v1". api_key: default $OPENAI_API_KEY, else none.

        timeout: seconds per request attempt, the whole of it (connect, headers, body: a server that trickles a
        byte at a time is cut off at the deadline, not only one that goes silent); max_retries: further attempts after a transient failure.
        concurrency: requests in flight at once. check: contact the endpoint now, so an unreachable
        server fails before any work starts. max_response_bytes: default 1 MB + what n answers of
        max_new_tokens could need. precision: what the served model computes in, as you declare it (e.g.
        "bfloat16"; evaluation: `--backend_options '{"precision": "bfloat16"}'`); "server" when undeclared --
        the API does not say, so the record says the server chose.
        """
        import httpx

        if not base_url or not model:
            raise ValueError(f"openai backend: need base_url and model, got base_url={base_url!r} model={model!r}")
        self.base_url, self.model, self.chat = base_url.rstrip("/"), model, chat
        self.system_prompt, self.extra_body = system_prompt, extra_body or {}
        self.timeout, self.max_retries, self.concurrency = timeout, max(0, max_retries), max(1, concurrency)
        self.max_response_bytes, self.on_wait = max_response_bytes, on_wait
        self.precision = precision
        key = api_key or os.environ.get("OPENAI_API_KEY")
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"Authorization": f"Bearer {key}"} if key else {},
            limits=httpx.Limits(max_connections=self.concurrency + 4, max_keepalive_connections=self.concurrency),
        )
        self.server_honours_n: bool | None = None  # learnt from the first sampled request
        self.requests = 0
        self.oversized = 0  # replies refused for their size
        if check:
            self.check()

    # -- spec strings ---------------------------------------------------------------------------------
    @classmethod
    def options_from_spec(cls, kind: str, arg: str) -> dict[str, Any]:
        base_url, hash_, model = arg.rpartition("#")
        if not hash_ or not base_url or not model:
            raise ValueError(f"backend spec '{kind}:{arg}': expected {kind}:BASE_URL#MODEL, e.g. {kind}:http://127.0.0.1:8000/v1#my-model")
        return {"base_url": base_url, "model": model, "chat": kind == "openai-chat"}

    @classmethod
    def for_student(cls, *, model=None, tokenizer=None, checkpoint_dir=None, arg="", **options):
        """`--backend openai:BASE_URL`: the server is asked for the student's checkpoint directory by
        path each round (`transformers serve` loads any local path it is asked for)."""
        if not arg or checkpoint_dir is None:
            raise ValueError("--backend openai:BASE_URL needs the server's base URL, e.g. openai:http://127.0.0.1:8000/v1")
        return cls(arg.split("#")[0], str(checkpoint_dir), **options)

    def identity(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.model, "chat": self.chat, "system_prompt": self.system_prompt,
                "precision": self.precision}

    def describe(self) -> str:
        return f"OpenAI-compatible endpoint {self.base_url} (model {self.model!r})"

    # -- transport ---------------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise ConnectionError if nothing answers HTTP at base_url; any HTTP status counts as reachable
        (a GET of base_url itself: /models is not implemented everywhere)."""
        import httpx

        try:
            self.client.get(self.base_url, timeout=min(self.timeout, 30.0))
        except httpx.HTTPError as exc:
            raise ConnectionError(f"OpenAI-compatible endpoint {self.base_url} is unreachable ({exc.__class__.__name__}: {exc}); "
                                  "is the server running and is the URL right (it usually ends in /v1)?") from exc

    def _post(self, path: str, payload: dict[str, Any], cap: int) -> dict[str, Any] | None:
        """The parsed JSON reply, retrying transient failures; None when the reply was over `cap` bytes."""
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                wait = min(8.0, 0.5 * 2 ** (attempt - 1)) * (1 + random.random() / 4)
                msg = f"{self.describe()}: {last}; retry {attempt}/{self.max_retries} in {wait:.1f} s"
                logger.warning(msg)
                if self.on_wait:
                    self.on_wait(msg)
                time.sleep(wait)
            try:
                return self._post_once(path, payload, cap)
            except _Transient as exc:
                last = exc
        if isinstance(last, _Transient) and last.args and str(last.args[0]).startswith("unreachable"):
            raise ConnectionError(f"{self.describe()} unreachable after {self.max_retries} retries: {last}")
        raise EndpointError(f"{self.describe()} failed after {self.max_retries} retries: {last}")

    def _post_once(self, path: str, payload: dict[str, Any], cap: int) -> dict[str, Any] | None:
        import httpx

        self.requests += 1
        url = f"{self.base_url}/{path}"
        deadline = time.monotonic() + self.timeout
        try:
            with self.client.stream("POST", url, json=payload) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    if time.monotonic() > deadline:  # httpx's timeouts bound each read, not the request
                        raise _Transient(f"reply not complete within {self.timeout:g} s ({len(body)} bytes so far)")
                    body += chunk
                    if len(body) > cap:
                        self.oversized += 1
                        logger.warning("%s: reply over %d bytes for max_tokens=%s refused (counted as an empty answer)",
                                       self.describe(), cap, payload.get("max_tokens"))
                        return None
                status = response.status_code
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _Transient(f"unreachable ({exc.__class__.__name__}: {exc})") from None
        except httpx.TimeoutException:
            raise _Transient(f"no reply within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise _Transient(f"{exc.__class__.__name__}: {exc}") from None
        if status in TRANSIENT_STATUS:
            raise _Transient(f"HTTP {status}: {_detail(body)}")
        if status >= 400:
            api = "chat" if path.startswith("chat") else "completions"
            raise EndpointError(f"{self.describe()} rejected a {api} request: HTTP {status}: {_detail(body)}")
        try:
            reply = json.loads(bytes(body))
        except (ValueError, RecursionError):
            raise _Transient(f"reply is not JSON (HTTP {status}, {len(body)} bytes: {bytes(body[:80])!r})") from None
        if not isinstance(reply, dict):
            raise _Transient(f"reply is JSON but not an object ({type(reply).__name__})")
        return reply

    # -- generation -------------------------------------------------------------------------------------
    def _generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[str]]:
        def one(request: GenerationRequest) -> list[str]:
            return self._samples(request, params)

        if self.concurrency == 1 or len(requests) <= 1:
            return [one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, requests))

    def _samples(self, request: GenerationRequest, params: SamplingParams) -> list[str]:
        key = request.stream_key
        if params.greedy:  # one request, the same answer n times
            return self._request(request, params, 1, sample_seed(params.seed, key, 0))[:1] * params.n
        texts: list[str] = []
        if self.server_honours_n is not False and params.n > 1:
            texts = self._request(request, params, params.n, sample_seed(params.seed, key, 0))
            self.server_honours_n = len(texts) >= params.n
        while len(texts) < params.n:  # the server ignored n (or n == 1): one request per missing sample
            texts += self._request(request, params, 1, sample_seed(params.seed, key, len(texts)))[:1]
        return texts[: params.n]

    def _request(self, request: GenerationRequest, params: SamplingParams, n: int, seed: int) -> list[str]:
        payload: dict[str, Any] = {"model": self.model, "max_tokens": params.max_new_tokens, "temperature": params.temperature,
                                   "seed": seed, **self.extra_body}
        if n > 1:
            payload["n"] = n
        if params.top_p < 1:
            payload["top_p"] = params.top_p
        if params.stop:
            payload["stop"] = list(params.stop[:MAX_SERVER_STOPS])
        chat = self.chat or request.messages is not None
        if chat:
            messages = request.messages
            if messages is None:
                messages = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else [])
                messages = messages + [{"role": "user", "content": request.prompt}]
            payload["messages"] = messages
        else:
            payload["prompt"] = request.prompt
        cap = self.max_response_bytes or (1 << 20) + n * params.max_chars() * 4
        reply = self._post("chat/completions" if chat else "completions", payload, cap)
        if reply is None:
            return [""] * n
        choices = reply.get("choices")
        if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
            raise EndpointError(f"{self.describe()} replied without choices: {json.dumps(reply)[:200]}")
        choices = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c.get("index", 0), int) else 0)
        if chat:
            return [str((c.get("message") or {}).get("content") or "") if isinstance(c.get("message"), (dict, type(None)))
                    else "" for c in choices]
        return [str(c.get("text") or "") for c in choices]

    def close(self) -> None:
        self.client.close()


def _detail(body: bytes | bytearray) -> str:
    """The server's own explanation (FastAPI puts it in "detail", OpenAI in "error.message")."""
    try:
        data = json.loads(bytes(body))
    except (ValueError, RecursionError):
        return bytes(body[:200]).decode("utf-8", "replace")
    if isinstance(data, dict):
        detail = data.get("detail") or data.get("message") or data.get("error") or data
        if isinstance(detail, dict):
            detail = detail.get("message", detail)
        return str(detail)[:300]
    return str(data)[:300]
