"""The scoring server: MLflow's scoring protocol and Open Inference Protocol v2.

>>> from modelyard.serving import ServeOptions, serve
>>> serve(["models:/iris@champion"], ServeOptions(port=5000))  # doctest: +SKIP

Modules: :mod:`~modelyard.serving.app` (the ASGI app),
:mod:`~modelyard.serving.protocol_mlflow` and :mod:`~modelyard.serving.protocol_v2`
(bodies in and out), :mod:`~modelyard.serving.batching` (micro-batching),
:mod:`~modelyard.serving.watcher` (following aliases), :mod:`~modelyard.serving.server`
(workers and shutdown), :mod:`~modelyard.serving.errors` (error envelopes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.serving.app import AppSettings, ScoringApp
    from modelyard.serving.server import ServeOptions, build_app, load_all, serve

__all__ = ["AppSettings", "ScoringApp", "ServeOptions", "build_app", "load_all", "serve"]

_WHERE = {
    "AppSettings": "modelyard.serving.app",
    "ScoringApp": "modelyard.serving.app",
    "ServeOptions": "modelyard.serving.server",
    "build_app": "modelyard.serving.server",
    "load_all": "modelyard.serving.server",
    "serve": "modelyard.serving.server",
}


def __getattr__(name: str) -> Any:
    # numpy and pandas load only when the server is actually used
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'modelyard.serving' has no attribute {name!r}")
