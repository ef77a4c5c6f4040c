"""The scoring server's ASGI application.

Routes (see ``/openapi.json`` on a running server):

=====================================  ==============================================
``GET  /ping``, ``/health``            liveness (MLflow); ``/health`` says which
                                       versions answer and why a new one did not load
``GET  /version``                      modelyard's version
``POST /invocations``                  MLflow's scoring protocol, default model
``GET  /v2``, ``/v2/health/live|ready``  Open Inference Protocol v2 server routes
``GET  /v2/models/{m}[/versions/{v}]``   model metadata from the signature
``GET  .../ready``, ``POST .../infer``   readiness and inference
``GET  /openapi.json``                 this API as an OpenAPI 3 document
=====================================  ==============================================

The app is plain ASGI with a dictionary of routes: the request path of a 1-row
prediction does a handful of dictionary lookups, one JSON parse, one predict
and one JSON dump. Every response of a model route carries ``x-model-name``,
``x-model-version`` and ``x-model-digest`` naming the version that answered.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from modelyard._version import __version__
from modelyard.errors import SchemaError
from modelyard.serving import _v2_binary, protocol_mlflow, protocol_v2
from modelyard.serving._access_log import FLUSH_EVERY_S, AccessLog
from modelyard.serving.batching import Batcher
from modelyard.serving.errors import RequestError, mlflow_envelope, v2_envelope
from modelyard.serving.runner import INLINE_MAX_BODY, PredictRunner
from modelyard.serving.slot import Loaded, ModelSlot
from modelyard.serving.watcher import AliasWatcher, Probe, probe_uri

__all__ = ["AppSettings", "ScoringApp"]

log = logging.getLogger("modelyard.serving")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = b"application/json"
_BINARY = b"application/octet-stream"
_Headers = tuple[tuple[bytes, bytes], ...]
_Parsed = TypeVar("_Parsed")
_MLFLOW = "mlflow"
_V2 = "v2"


@dataclass(frozen=True)
class AppSettings:
    """Knobs of one app instance (one per worker process)."""

    #: seconds a predict may take before the caller gets a 504
    timeout: float = 60.0
    #: request bodies above this many bytes get a 413
    max_body_bytes: int = 100 * 1024 * 1024
    #: micro-batching: at most this many rows per predict (1 = off)
    max_batch_size: int = 1
    #: micro-batching: wait at most this long for requests already arriving
    max_batch_wait_s: float = 0.002
    #: seconds between registry polls for aliases / latest (0 = do not follow)
    poll_interval: float = 10.0
    #: allow tiny predicts to run on the event loop (see :mod:`~modelyard.serving.runner`)
    inline_predict: bool = True
    #: threads for predicts that run off the event loop
    predict_threads: int = 4


class ScoringApp:
    """An ASGI app serving one or more model slots."""

    def __init__(
        self,
        slots: Sequence[ModelSlot],
        *,
        default: str | None = None,
        settings: AppSettings | None = None,
        access_log: AccessLog | None = None,
        reload: Callable[[ModelSlot], Loaded] | None = None,
        probe: Callable[[ModelSlot], Probe] | None = None,
    ) -> None:
        if not slots:
            raise ValueError("at least one model is needed")
        self.settings = settings or AppSettings()
        self.slots = {s.name: s for s in slots}
        if len(self.slots) != len(slots):
            raise ValueError("two models are served under the same name")
        self.default = self.slots[default] if default else slots[0]
        self.runner = PredictRunner(
            self.settings.timeout,
            threads=self.settings.predict_threads,
            inline=self.settings.inline_predict,
        )
        self.batchers: dict[str, Batcher] = {}
        if self.settings.max_batch_size > 1:
            for name in self.slots:
                self.batchers[name] = Batcher(
                    self._run_predict,
                    max_size=self.settings.max_batch_size,
                    max_wait=self.settings.max_batch_wait_s,
                )
        self.access_log = access_log
        self._reload = reload
        self._probe = probe or (lambda slot: lambda: probe_uri(slot.uri))
        self._watchers: list[AliasWatcher] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._openapi: tuple[tuple[int, ...], bytes] | None = None
        self._request_ids = 0
        self._get: dict[str, Callable[[], Awaitable[tuple[int, bytes, bytes]]]] = {
            "/ping": self._ping,
            "/health": self._health,
            "/version": self._version,
            "/openapi.json": self._openapi_doc,
            "/v2": self._v2_server,
            "/v2/health/live": self._v2_live,
            "/v2/health/ready": self._v2_ready,
        }

    # -- ASGI ------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets: not ours
            raise RuntimeError(f"unsupported ASGI scope type {kind!r}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def startup(self) -> None:
        """Start batch dispatchers, alias watchers and the log flusher (on the running loop)."""
        loop = asyncio.get_running_loop()
        for batcher in self.batchers.values():
            batcher.start()
        if self._reload is not None and self.settings.poll_interval > 0:
            for slot in self.slots.values():
                if not slot.follows:
                    continue
                watcher = AliasWatcher(
                    slot,
                    interval=self.settings.poll_interval,
                    loop=loop,
                    load=functools.partial(self._reload, slot),
                    probe=self._probe(slot),
                )
                watcher.start()
                self._watchers.append(watcher)
        if self.access_log is not None:
            self._schedule_flush(loop)

    async def shutdown(self) -> None:
        """Stop background work; in-flight requests have been drained by the server."""
        for watcher in self._watchers:
            watcher.stop(timeout=1.0)
        self._watchers.clear()
        for batcher in self.batchers.values():
            await batcher.stop()
        self.runner.close()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        if self.access_log is not None:
            self.access_log.flush()

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        def tick() -> None:
            assert self.access_log is not None
            self.access_log.flush()
            self._flush_handle = loop.call_later(FLUSH_EVERY_S, tick)

        self._flush_handle = loop.call_later(FLUSH_EVERY_S, tick)

    # -- dispatch ----------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        protocol = _V2 if path.startswith("/v2") else _MLFLOW
        extra: Sequence[tuple[bytes, bytes]] = ()
        answered = "-"
        try:
            if path == "/invocations":
                if method != "POST":
                    raise _method_not_allowed("POST")
                status, ctype, body, loaded = await self._invocations(scope, receive)
                extra, answered = loaded.headers, f"{loaded.name}/{loaded.version}"
            elif path.startswith("/v2/models/"):
                status, ctype, body, loaded, more = await self._v2_model(
                    scope, receive, method, path
                )
                extra, answered = (*loaded.headers, *more), f"{loaded.name}/{loaded.version}"
            else:
                handler = self._get.get(path)
                if handler is None:
                    raise RequestError(
                        "ENDPOINT_NOT_FOUND", f"no route {path!r}; see /openapi.json"
                    )
                if method not in ("GET", "HEAD"):
                    raise _method_not_allowed("GET")
                status, ctype, body = await handler()
        except RequestError as err:
            status, ctype = err.status, _JSON
            body = v2_envelope(err) if protocol == _V2 else mlflow_envelope(err)
        except _ClientGone:
            return
        except Exception as exc:  # a bug of ours: answer in the envelope, trace to the log
            log.exception("unexpected error on %s %s", method, path)
            failure = RequestError(
                "INTERNAL_ERROR", f"unexpected server error ({type(exc).__name__}); see the log"
            )
            status, ctype = failure.status, _JSON
            body = v2_envelope(failure) if protocol == _V2 else mlflow_envelope(failure)
        headers = [
            (b"content-type", ctype),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        if status == 405:
            headers.append((b"allow", b"POST" if path == "/invocations" else b"GET"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body if method != "HEAD" else b""})
        if self.access_log is not None:
            client = scope.get("client")
            self.access_log.record(
                client=client[0] if client else "-",
                method=method,
                path=path,
                http_version=scope.get("http_version", "1.1"),
                status=status,
                size=len(body),
                seconds=time.perf_counter() - start,
                answered_by=answered,
            )

    # -- MLflow protocol -----------------------------------------------------------

    async def _invocations(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, bytes, Loaded]:
        slot = self.default
        loaded = slot.current
        content_type, length = _headers(scope)
        media = protocol_mlflow.parse_content_type(content_type)
        spec = loaded.spec
        body, parsed = await self._read(
            slot, receive, length, lambda b: protocol_mlflow.parse_request(media, b, spec)
        )
        predictions, loaded = await self._predict(
            slot,
            loaded=loaded,
            data=parsed.data,
            params=parsed.params,
            rows=parsed.rows,
            body_size=len(body),
        )
        try:
            out = protocol_mlflow.render_predictions(predictions, unwrapped=parsed.unwrapped)
        except (TypeError, ValueError) as exc:
            raise self._model_failure(loaded, exc, "rendering its predictions") from None
        return 200, _JSON, out, loaded

    # -- Open Inference Protocol v2 --------------------------------------------------

    async def _v2_model(
        self, scope: Scope, receive: Receive, method: str, path: str
    ) -> tuple[int, bytes, bytes, Loaded, _Headers]:
        parts = path.split("/")[3:]  # after "", "v2", "models"
        name = parts[0] if parts else ""
        slot = self.slots.get(name)
        if slot is None:
            raise RequestError(
                "RESOURCE_DOES_NOT_EXIST",
                f"model {name!r} is not served here; served: {sorted(self.slots)}",
            )
        loaded = slot.current
        rest = parts[1:]
        if len(rest) >= 2 and rest[0] == "versions":
            if not loaded.matches_version(rest[1]):
                raise RequestError(
                    "RESOURCE_DOES_NOT_EXIST",
                    f"version {rest[1]!r} of model {name!r} is not loaded;"
                    f" version {loaded.version} is",
                )
            rest = rest[2:]
        action = rest[0] if rest else ""
        if len(rest) > 1 or action not in ("", "ready", "infer"):
            raise RequestError("ENDPOINT_NOT_FOUND", f"no route {path!r}; see /openapi.json")
        if action == "infer":
            if method != "POST":
                raise _method_not_allowed("POST")
            return await self._v2_infer(scope, receive, slot, loaded)
        if method not in ("GET", "HEAD"):
            raise _method_not_allowed("GET")
        if action == "ready":
            return 200, _JSON, b"", loaded, ()
        meta = protocol_v2.model_metadata(
            slot.name, [loaded.version], f"modelyard_{loaded.flavor}", loaded.spec
        )
        return 200, _JSON, json.dumps(meta).encode(), loaded, ()

    async def _v2_infer(
        self, scope: Scope, receive: Receive, slot: ModelSlot, loaded: Loaded
    ) -> tuple[int, bytes, bytes, Loaded, _Headers]:
        content_type, length = _headers(scope)
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media not in ("", "application/json", "application/octet-stream"):
            raise RequestError(
                "UNSUPPORTED_MEDIA_TYPE",
                "infer takes application/json, or application/octet-stream with binary"
                f" tensors; got {content_type!r}",
                field="Content-Type",
            )
        binary_header = _header(scope, _v2_binary.HEADER)
        spec = loaded.spec

        def parse(body: bytes) -> protocol_v2.InferRequest:
            size = None
            if binary_header is not None:
                size = _v2_binary.json_size(binary_header, len(body))
            return protocol_v2.parse_infer(body, spec, json_size=size)

        body, request = await self._read(slot, receive, length, parse)
        predictions, loaded = await self._predict(
            slot,
            loaded=loaded,
            data=request.data,
            params=request.params,
            rows=request.rows,
            body_size=len(body),
        )
        try:
            out, json_size = protocol_v2.render_infer(
                slot.name, loaded.version, request, predictions, loaded.spec
            )
        except RequestError:
            raise
        except (TypeError, ValueError) as exc:
            raise self._model_failure(loaded, exc, "rendering its predictions") from None
        if json_size is None:
            return 200, _JSON, out, loaded, ()
        return 200, _BINARY, out, loaded, ((_v2_binary.HEADER, str(json_size).encode()),)

    async def _v2_server(self) -> tuple[int, bytes, bytes]:
        doc = {"name": "modelyard", "version": __version__, "extensions": ["binary_tensor_data"]}
        return 200, _JSON, json.dumps(doc).encode()

    async def _v2_live(self) -> tuple[int, bytes, bytes]:
        return 200, _JSON, b""

    async def _v2_ready(self) -> tuple[int, bytes, bytes]:
        return 200, _JSON, b""

    # -- predict -------------------------------------------------------------------

    async def _predict(
        self,
        slot: ModelSlot,
        *,
        loaded: Loaded,
        data: Any,
        params: dict[str, Any] | None,
        rows: int | None,
        body_size: int,
    ) -> tuple[Any, Loaded]:
        small = body_size <= INLINE_MAX_BODY
        batcher = self.batchers.get(slot.name)
        try:
            if (
                batcher is not None
                and rows is not None
                and batcher.can_batch(loaded, data, params, rows)
            ):
                future = batcher.submit(loaded, data, rows, small=small)
                try:
                    return await asyncio.wait_for(future, self.settings.timeout)
                except asyncio.TimeoutError:
                    raise RequestError(
                        "DEADLINE_EXCEEDED",
                        "the model did not answer within the request timeout"
                        f" ({self.settings.timeout:g} s)",
                    ) from None
            return await self._run_predict(loaded, data, params, small), loaded
        except RequestError:
            raise
        except SchemaError as exc:
            raise RequestError(
                "INVALID_PARAMETER_VALUE",
                str(exc),
                error_class="SCHEMA_ENFORCEMENT_FAILED",
                field=exc.column,
            ) from None
        except Exception as exc:
            raise self._model_failure(loaded, exc, "predicting") from None

    async def _run_predict(
        self, loaded: Loaded, data: Any, params: dict[str, Any] | None, small: bool
    ) -> Any:
        model = loaded.model
        return await self.runner.run(
            lambda: model.predict(data, params), loaded.timing, small=small
        )

    def _model_failure(self, loaded: Loaded, exc: BaseException, doing: str) -> RequestError:
        self._request_ids += 1
        ref = f"{loaded.name}/{loaded.version}#{self._request_ids}"
        log.error("model %s raised while %s", ref, doing, exc_info=exc)
        return RequestError(
            "INTERNAL_ERROR",
            f"the model raised {type(exc).__name__} while {doing}; the server log has the"
            f" details under {ref}",
        )

    # -- small routes ----------------------------------------------------------------

    async def _ping(self) -> tuple[int, bytes, bytes]:
        return 200, _JSON, b"\n"

    async def _health(self) -> tuple[int, bytes, bytes]:
        models = [slot.health() for slot in self.slots.values()]
        status = "degraded" if any("last_error" in m for m in models) else "ok"
        for m, slot in zip(models, self.slots.values(), strict=True):
            batcher = self.batchers.get(slot.name)
            if batcher is not None:
                m["batches"] = {"count": batcher.batches, "requests": batcher.batched_requests}
        doc = {"status": status, "version": __version__, "models": models}
        return 200, _JSON, json.dumps(doc).encode()

    async def _version(self) -> tuple[int, bytes, bytes]:
        return 200, _JSON, __version__.encode()

    async def _openapi_doc(self) -> tuple[int, bytes, bytes]:
        from modelyard.serving.openapi import build_openapi

        key = tuple(id(s.current) for s in self.slots.values())
        if self._openapi is None or self._openapi[0] != key:
            doc = build_openapi(list(self.slots.values()), self.default.name)
            self._openapi = (key, json.dumps(doc).encode())
        return 200, _JSON, self._openapi[1]

    # -- body ----------------------------------------------------------------------

    async def _read(
        self,
        slot: ModelSlot,
        receive: Receive,
        length: int | None,
        parse: Callable[[bytes], _Parsed],
    ) -> tuple[bytes, _Parsed]:
        """Read and parse a request body for ``slot``.

        Meanwhile the slot's batcher counts the request as arriving, so a batch
        being formed waits for it rather than leaving without it.
        """
        batcher = self.batchers.get(slot.name)
        if batcher is not None:
            batcher.arriving += 1
        try:
            body = await self._body(receive, length)
            return body, parse(body)
        finally:
            if batcher is not None:
                batcher.arriving -= 1

    async def _body(self, receive: Receive, length: int | None) -> bytes:
        limit = self.settings.max_body_bytes
        if length is not None and length > limit:
            raise _too_large(length, limit)
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        body: bytes = message.get("body", b"")
        if not message.get("more_body"):
            if len(body) > limit:
                raise _too_large(len(body), limit)
            return body
        chunks = [body]
        total = len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                raise _too_large(total, limit)
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


class _ClientGone(Exception):
    """The client disconnected before the body arrived: nobody to answer."""


def _headers(scope: Scope) -> tuple[str | None, int | None]:
    content_type = None
    length = None
    for key, value in scope["headers"]:
        if key == b"content-type":
            content_type = value.decode("latin-1")
        elif key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise RequestError(
                    "BAD_REQUEST", "Content-Length is not a number", field="Content-Length"
                ) from None
    return content_type, length


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _too_large(size: int, limit: int) -> RequestError:
    return RequestError(
        "REQUEST_ENTITY_TOO_LARGE",
        f"the request body ({size} bytes) is larger than the limit ({limit} bytes);"
        " raise it with --max-body-size",
        field="body",
    )


def _method_not_allowed(allowed: str) -> RequestError:
    return RequestError("METHOD_NOT_ALLOWED", f"use {allowed} on this route")
