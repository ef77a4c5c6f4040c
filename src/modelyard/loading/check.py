"""Step 4, check: does the running environment match the model's?

Compares the saved Python ``major.minor`` with the running one and every
requirement that has a version specifier with the installed distribution.
Installed versions come from ``importlib.metadata`` (never by importing a
package) and are cached for the life of the process. MLflow's own
distributions are not checked: modelyard loads MLflow's models in its place,
so every MLflow-saved model would otherwise warn that ``mlflow`` is missing.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from modelyard.format.environment import (
    canonical_name,
    installed_version,
    read_requirements,
)
from modelyard.format.mlmodel import MLmodel

EnvPolicy = Literal["warn", "strict", "ignore"]
POLICIES: tuple[str, ...] = ("warn", "strict", "ignore")
logger = logging.getLogger("modelyard")
# Distributions modelyard stands in for when it loads a model.
_STOOD_IN_FOR = frozenset({"mlflow", "mlflow-skinny"})
# `name==version` with a canonical PEP 440 version and nothing else: how MLflow
# and modelyard pin. The identical installed version satisfies it and a missing
# distribution fails it, so the common case never imports `packaging` (~15 ms
# of a cold start); anything else is decided by `packaging`.
_PIN = re.compile(
    r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==("
    r"[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?)"
)


@dataclass(frozen=True)
class Mismatch:
    """One requirement the environment does not satisfy."""

    package: str
    required: str
    installed: str | None  # None: not installed

    def __str__(self) -> str:
        current = self.installed or "not installed"
        return f"{self.package} (installed: {current}, required: {self.required})"


@dataclass(frozen=True)
class EnvironmentReport:
    """The result of comparing a model's environment with the running one."""

    python_saved: str | None
    python_running: str
    mismatches: tuple[Mismatch, ...] = ()
    unchecked: tuple[str, ...] = field(default=())  # paths, URLs, unparsable lines

    @property
    def python_matches(self) -> bool:
        """Same ``major.minor`` (or the model did not record its Python)."""
        if self.python_saved is None:
            return True
        return _major_minor(self.python_saved) == _major_minor(self.python_running)

    @property
    def ok(self) -> bool:
        """No mismatch at all."""
        return self.python_matches and not self.mismatches

    def summary(self) -> str:
        """One short paragraph naming every mismatch."""
        if self.ok:
            return "the environment matches the model's requirements"
        lines = ["the environment differs from the model's:"]
        if not self.python_matches:
            lines.append(
                f" - Python {_major_minor(self.python_running)} is running, "
                f"the model was saved with {self.python_saved}"
            )
        lines += [f" - {m}" for m in self.mismatches]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly form, for ``--json`` output and the server's health report."""
        return {
            "ok": self.ok,
            "python": {"saved": self.python_saved, "running": self.python_running},
            "mismatches": [
                {"package": m.package, "required": m.required, "installed": m.installed}
                for m in self.mismatches
            ],
            "unchecked": list(self.unchecked),
        }


def check(model_dir: Path, mlmodel: MLmodel) -> EnvironmentReport:
    """Compare ``model_dir``'s recorded environment with this process's."""
    mismatches = []
    unchecked = []
    for line in read_requirements(model_dir):
        pin = _PIN.fullmatch(line)
        if pin is not None:
            name = canonical_name(pin.group(1))
            if name in _STOOD_IN_FOR:
                continue
            installed = _installed(name)
            if installed == pin.group(2):
                continue
            if installed is None:
                mismatches.append(Mismatch(name, line, None))
                continue
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            req = Requirement(line)
        except InvalidRequirement:
            unchecked.append(line)
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        if not req.specifier or canonical_name(req.name) in _STOOD_IN_FOR:
            continue
        installed = _installed(canonical_name(req.name))
        if installed is None or not req.specifier.contains(installed, prereleases=True):
            mismatches.append(Mismatch(canonical_name(req.name), line, installed))
    v = sys.version_info
    return EnvironmentReport(
        python_saved=mlmodel.python_version,
        python_running=f"{v.major}.{v.minor}.{v.micro}",
        mismatches=tuple(mismatches),
        unchecked=tuple(unchecked),
    )


def apply_policy(report: EnvironmentReport, policy: str, *, uri: str) -> None:
    """Warn once, raise, or stay quiet, as ``policy`` says."""
    if policy not in POLICIES:
        raise ValueError(f"env must be one of {POLICIES}, not {policy!r}")
    if report.ok or policy == "ignore":
        return
    if policy == "strict":
        from modelyard.errors import EnvironmentMismatch

        raise EnvironmentMismatch(report)
    logger.warning("%s: %s", uri, report.summary())


# Distributions that install the same importable package under another name: the
# CPU-only xgboost wheel is `xgboost-cpu` (`import xgboost` alike). A model pinned
# to one is satisfied by the other at the same version; MLflow's requirement
# inference even writes both pins for one installed wheel.
_SAME_PACKAGE = {"xgboost": ("xgboost-cpu",), "xgboost-cpu": ("xgboost",)}


@functools.cache
def _installed(name: str) -> str | None:
    for dist in (name, *_SAME_PACKAGE.get(name, ())):
        version = installed_version(dist)
        if version is not None:
            return version
    return None


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])
