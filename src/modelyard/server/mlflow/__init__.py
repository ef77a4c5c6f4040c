"""MLflow's REST API on ``modelyard server``: its unmodified client works against us.

``MLFLOW_TRACKING_URI=http://<server>`` with ``MLFLOW_TRACKING_TOKEN=<a modelyard
token>`` (or ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` = user name and token)
logs runs and models, registers versions, moves aliases and loads by
``models:/`` and ``runs:/`` URIs through these routes, over the same yard and
the same deny-by-default access layer as ``/api/v1``:

- :mod:`.tracking`: experiments, runs, params, metrics, tags, run file listings;
- :mod:`.logged_models`: MLflow 3's logged models (``m-<id>``);
- :mod:`.registry`: registered models, versions, aliases, tags;
- :mod:`.artifacts`: the artifact proxy (file PUT/GET, folder listings) and
  ``/api/3.0/mlflow/server-info``.

Any other path under ``/api/2.0/mlflow``, ``/api/3.0/mlflow`` or ``/ajax-api``
answers MLflow's JSON error with 501 ``NOT_IMPLEMENTED`` (after authentication),
never a 500: the client retries 5xx answers for minutes.
"""

from __future__ import annotations

from modelyard.server._routing import ApiRoute

__all__ = ["routes"]


def routes() -> list[ApiRoute]:
    """Every MLflow route."""
    from modelyard.server.mlflow import artifacts, logged_models, registry, tracking

    return [*tracking.ROUTES, *logged_models.ROUTES, *registry.ROUTES, *artifacts.ROUTES]
