"""The ``MLmodel`` manifest, in MLflow's format.

MLflow writes ``yaml.safe_dump`` of its ``Model.to_dict()``: keys sorted, the
signature as JSON strings, ``utc_time_created`` as a quoted string. We read
the same file, keep every key we do not know (so a round trip loses nothing),
and write it back the same way, so MLflow loads what we save.
"""

from __future__ import annotations

import copy
import datetime as _dt
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.errors import MalformedMLmodel, MLmodelNotFound
from modelyard.format import _yaml

MLMODEL_FILE = "MLmodel"
PYFUNC = "python_function"


@dataclass(frozen=True)
class MLmodel:
    """A parsed ``MLmodel`` file.

    ``data`` is the whole document; the properties below read its well-known
    keys. Unknown keys are kept and written back untouched.
    """

    data: Mapping[str, Any]
    path: Path | None = field(default=None, compare=False)

    @classmethod
    def new(
        cls,
        *,
        flavors: Mapping[str, Mapping[str, Any]],
        metadata: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> MLmodel:
        """A fresh manifest with a new ``model_uuid`` and creation time."""
        now = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
        data: dict[str, Any] = {
            "flavors": {k: dict(v) for k, v in flavors.items()},
            "model_uuid": uuid.uuid4().hex,
            "utc_time_created": str(now),
        }
        if metadata:
            data["metadata"] = dict(metadata)
        data.update({k: v for k, v in extra.items() if v is not None})
        return cls(data)

    @classmethod
    def read(cls, model_dir: Path | str) -> MLmodel:
        """Read ``<model_dir>/MLmodel`` (or the file itself when given its path)."""
        p = Path(model_dir)
        file = p if p.name == MLMODEL_FILE and p.is_file() else p / MLMODEL_FILE
        try:
            text = file.read_bytes()
        except FileNotFoundError:
            raise MLmodelNotFound(file.parent) from None
        except IsADirectoryError:
            raise MalformedMLmodel(file, "MLmodel is a directory") from None
        try:
            data = _yaml.load(text)
        except _yaml.YAMLError as exc:
            raise MalformedMLmodel(file, f"not valid YAML ({exc.__class__.__name__})") from exc
        if not isinstance(data, dict):
            raise MalformedMLmodel(file, "expected a mapping at the top level")
        flavors = data.get("flavors")
        if not isinstance(flavors, dict) or not flavors:
            raise MalformedMLmodel(file, "'flavors' must be a non-empty mapping", field="flavors")
        for name, conf in flavors.items():
            if not isinstance(conf, dict):
                raise MalformedMLmodel(
                    file, f"flavor {name!r} must map to a mapping", field=f"flavors.{name}"
                )
        return cls(data, path=file.parent)

    def write(self, model_dir: Path | str) -> None:
        """Write the manifest as ``<model_dir>/MLmodel``."""
        (Path(model_dir) / MLMODEL_FILE).write_text(_yaml.dump(self.to_dict()), encoding="utf-8")

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the document."""
        return copy.deepcopy(dict(self.data))

    def replace(self, **changes: Any) -> MLmodel:
        """A copy with top-level keys set (``None`` removes a key)."""
        data = self.to_dict()
        for k, v in changes.items():
            if v is None:
                data.pop(k, None)
            else:
                data[k] = v
        return MLmodel(data, path=self.path)

    # -- well-known keys -------------------------------------------------------

    @property
    def flavors(self) -> Mapping[str, Mapping[str, Any]]:
        """Flavor name to its configuration mapping."""
        flavors: Mapping[str, Mapping[str, Any]] = self.data["flavors"]
        return flavors

    @property
    def pyfunc(self) -> Mapping[str, Any]:
        """The ``python_function`` flavor's configuration (empty when absent)."""
        return self.flavors.get(PYFUNC, {})

    @property
    def model_uuid(self) -> str | None:
        """The model's uuid (MLflow 3 sets it to the logged model id)."""
        value = self.data.get("model_uuid")
        return None if value is None else str(value)

    @property
    def utc_time_created(self) -> str | None:
        """Creation time, as MLflow writes it: ``YYYY-MM-DD HH:MM:SS.ffffff``."""
        value = self.data.get("utc_time_created")
        return None if value is None else str(value)

    @property
    def run_id(self) -> str | None:
        """The run that logged the model, if any."""
        value = self.data.get("run_id")
        return None if value is None else str(value)

    @property
    def metadata(self) -> Mapping[str, Any]:
        """User metadata (empty mapping when none was saved)."""
        value = self.data.get("metadata")
        return value if isinstance(value, dict) else {}

    @property
    def signature(self) -> Mapping[str, Any] | None:
        """The raw ``signature`` block (JSON strings), or ``None``."""
        value = self.data.get("signature")
        return value if isinstance(value, dict) else None

    @property
    def saved_input_example_info(self) -> Mapping[str, Any] | None:
        """Where and how the input example was saved, or ``None``."""
        value = self.data.get("saved_input_example_info")
        return value if isinstance(value, dict) else None

    @property
    def python_version(self) -> str | None:
        """The full Python version the model was saved with, if recorded."""
        value = self.pyfunc.get("python_version")
        return None if value is None else str(value)

    @property
    def model_config(self) -> Mapping[str, Any]:
        """The saved ``model_config`` (``python_function.config``), empty when none."""
        value = self.pyfunc.get("config")
        return value if isinstance(value, dict) else {}


def running_python_version() -> str:
    """``X.Y.Z`` of this interpreter, as MLflow records it."""
    v = sys.version_info
    return f"{v.major}.{v.minor}.{v.micro}"
