"""``Model``: one ``predict`` over any flavor, with the model's metadata."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.errors import MalformedMLmodel
from modelyard.flavors import Predictor
from modelyard.format.enforce import SignatureEnforcer
from modelyard.format.example import load_typed_example
from modelyard.format.mlmodel import MLMODEL_FILE, MLmodel
from modelyard.format.schema import Schema
from modelyard.format.signature import Signature

if TYPE_CHECKING:
    from modelyard.loading.check import EnvironmentReport
    from modelyard.loading.resolve import ModelRef
    from modelyard.trust.policy import LoadTrust

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
        trust: LoadTrust | None = None,
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
        self._trust = trust
        self._example: Any = _UNSET
        self._signature = _read_signature(mlmodel, path)
        # Plans are compiled here, once, so predict only runs them. MLflow's
        # type-hint signatures are checked by the model itself: inputs pass as given.
        self._enforce = (
            SignatureEnforcer(
                self._signature,
                inputs=not mlmodel.data.get("is_signature_from_type_hint"),
            )
            if self._signature is not None
            else None
        )

    def predict(self, data: Any, params: Mapping[str, Any] | None = None) -> Any:
        """Predictions for ``data``, checked against the signature first.

        Inputs are made to fit the signature (columns reordered, extra ones
        dropped with one warning, lossless type conversions) and params get
        their defaults; anything that cannot fit raises :class:`SchemaError`
        naming the column or param. Without a signature, ``data`` and
        ``params`` pass through untouched.
        """
        if self._enforce is not None:
            data, params = self._enforce(data, params)
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
    def trust(self) -> LoadTrust | None:
        """How the model was trusted: signature state, signer and key, and the policy used."""
        return self._trust

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
    def input_schema(self) -> Schema | None:
        """The declared inputs (what ``predict`` enforces), or ``None``."""
        return self._signature.inputs if self._signature is not None else None

    @property
    def environment(self) -> EnvironmentReport:
        """How the running environment compares with the model's requirements."""
        return self._environment

    @property
    def input_example(self) -> Any:
        """The saved input example (read on first access), or ``None``."""
        if self._example is _UNSET:
            info = self._mlmodel.saved_input_example_info
            self._example = load_typed_example(self._path, info, self.input_schema)
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


def _describe(schema: Schema) -> str:
    text = ", ".join(str(s) for s in schema)
    return text if len(text) <= 80 else text[:77] + "..."


def _read_signature(mlmodel: MLmodel, path: Path) -> Signature | None:
    block = mlmodel.signature
    if not block or not any(block.get(k) for k in ("inputs", "outputs", "params")):
        return None
    try:
        return Signature.from_mlmodel(block)
    except ValueError as exc:
        raise MalformedMLmodel(path / MLMODEL_FILE, str(exc), field="signature") from exc
