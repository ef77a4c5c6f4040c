"""``Model``: one ``predict`` over any flavor, with the model's metadata."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.flavors import Predictor
from modelyard.format.example import load_example
from modelyard.format.mlmodel import MLmodel
from modelyard.format.signature import Signature

if TYPE_CHECKING:
    from modelyard.loading.check import EnvironmentReport
    from modelyard.loading.resolve import ModelRef

_UNSET: Any = object()


class Model:
    """A loaded model. Get one from :func:`modelyard.load_model`.

    >>> model = modelyard.load_model("./iris-model")  # doctest: +SKIP
    >>> model.predict(df)                              # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        mlmodel: MLmodel,
        native: Any,
        predictor: Predictor,
        flavor: str,
        path: Path,
        digest: str,
        model_config: Mapping[str, Any],
        environment: EnvironmentReport,
        ref: ModelRef,
    ) -> None:
        self._mlmodel = mlmodel
        self._native = native
        self._predictor = predictor
        self._flavor = flavor
        self._path = path
        self._digest = digest
        self._config = dict(model_config)
        self._environment = environment
        self._ref = ref
        self._example: Any = _UNSET
        block = mlmodel.signature
        self._signature = Signature.from_mlmodel(block) if block else None

    def predict(self, data: Any, params: Mapping[str, Any] | None = None) -> Any:
        """Predictions for ``data``; ``params`` are passed to models that take them."""
        return self._predictor(data, params)

    def unwrap(self) -> Any:
        """The native object (the estimator, the ``torch.nn.Module``, the PythonModel...)."""
        return self._native

    # -- what was loaded -------------------------------------------------------

    @property
    def flavor(self) -> str:
        """Name of the flavor that loaded the model."""
        return self._flavor

    @property
    def digest(self) -> str:
        """``sha256:...`` content digest of the model directory."""
        return self._digest

    @property
    def path(self) -> Path:
        """Local directory the model was loaded from."""
        return self._path

    @property
    def uri(self) -> str:
        """The reference the model was loaded by."""
        return self._ref.uri

    @property
    def name(self) -> str | None:
        """Registered model name, when loaded through the registry."""
        return self._ref.name

    @property
    def version(self) -> int | None:
        """Registered version number, when loaded through the registry."""
        return self._ref.version

    @property
    def alias(self) -> str | None:
        """The alias the model was loaded by, if any."""
        return self._ref.alias

    @property
    def mlmodel(self) -> MLmodel:
        """The parsed ``MLmodel`` manifest."""
        return self._mlmodel

    @property
    def metadata(self) -> dict[str, Any]:
        """User metadata saved with the model."""
        return dict(self._mlmodel.metadata)

    @property
    def model_config(self) -> dict[str, Any]:
        """Effective config: saved values with load-time overrides applied."""
        return dict(self._config)

    @property
    def signature(self) -> Signature | None:
        """The declared signature, or ``None``."""
        return self._signature

    @property
    def environment(self) -> EnvironmentReport:
        """How the running environment compares with the model's requirements."""
        return self._environment

    @property
    def input_example(self) -> Any:
        """The saved input example (read on first access), or ``None``."""
        if self._example is _UNSET:
            info = self._mlmodel.saved_input_example_info
            self._example = load_example(self._path, dict(info) if info else None)
        return self._example

    # -- display ---------------------------------------------------------------

    def _facts(self) -> list[tuple[str, str]]:
        facts = [("flavor", self._flavor)]
        if self.name:
            where = f"{self.name} v{self.version}" + (f" (@{self.alias})" if self.alias else "")
            facts.append(("registered", where))
        facts += [("uri", self.uri), ("digest", self._digest[:19] + "...")]
        if self._signature and self._signature.inputs is not None:
            facts.append(("inputs", _describe(self._signature.inputs)))
        if not self._environment.ok:
            facts.append(("environment", f"{len(self._environment.mismatches)} mismatch(es)"))
        return facts

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v}" if k != "uri" else f"{k}={v!r}" for k, v in self._facts())
        return f"<Model {inner}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'><code>{html.escape(v)}</code></td></tr>"
            for k, v in self._facts()
        )
        return f"<table><caption>modelyard.Model</caption>{rows}</table>"


def _describe(specs: Any) -> str:
    parts = []
    for s in specs:
        if s.get("type") == "tensor":
            t = s.get("tensor-spec", {})
            parts.append(f"tensor {t.get('dtype')} {t.get('shape')}")
        else:
            parts.append(f"{s.get('name', '?')}: {s.get('type')}")
    text = ", ".join(parts)
    return text if len(text) <= 80 else text[:77] + "..."
