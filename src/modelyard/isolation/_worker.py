"""The model process of an isolated environment: ``python -m modelyard.isolation._worker``.

It loads one model, then answers ``predict`` messages (see :mod:`._wire`)
on stdin/stdout until stdin closes. Anything the model prints goes to
stderr, so it cannot corrupt the protocol.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from modelyard.isolation import _wire


def main() -> int:
    """Serve one model over stdin/stdout."""
    out: IO[bytes] = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # fd 1 (print, C extensions) now goes to stderr
    inp = sys.stdin.buffer
    first = _wire.receive(inp)
    if first is None:
        return 0
    header, _ = first
    try:
        from modelyard.loading import load_model

        model = load_model(
            header["path"],
            model_config=header.get("model_config"),
            env=header.get("env") or "warn",
            trust=header.get("trust"),
            verify=header.get("verify") or "auto",
        )
    except Exception as exc:
        _wire.send(out, _error(exc))
        return 1
    _wire.send(
        out,
        {
            "ok": True,
            "flavor": model.flavor,
            "digest": model.digest,
            "environment": model.environment.to_dict(),
            "trust": model.trust.to_dict() if model.trust is not None else None,
        },
    )
    while (message := _wire.receive(inp)) is not None:
        header, payload = message
        try:
            _wire.send(out, *_answer(model, header, payload))
        except Exception as exc:
            _wire.send(out, _error(exc))
    return 0


def _answer(model: Any, header: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
    op = header.get("op")
    if op == "predict":
        data = _wire.decode(header["kind"], header.get("extra"), payload)
        pred = model.predict(data, header.get("params"))
        kind, extra, body = _wire.encode(pred)
        return {"ok": True, "kind": kind, "extra": extra}, body
    if op == "versions":
        from modelyard.format.environment import installed_version

        names = header.get("packages") or []
        return {
            "ok": True,
            "python": sys.version.split()[0],
            "versions": {n: installed_version(n) for n in names},
        }, b""
    raise ValueError(f"unknown operation {op!r}")


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "ok": False,
        "error": {
            "type": type(exc).__name__,
            "message": str(exc),
            "column": getattr(exc, "column", None),
            "expected": getattr(exc, "expected", None),
            "received": getattr(exc, "received", None),
        },
    }


if __name__ == "__main__":
    sys.exit(main())
