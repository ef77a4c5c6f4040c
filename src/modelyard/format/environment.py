"""Environment files of a model: ``requirements.txt``, ``python_env.yaml``, ``conda.yaml``.

Written exactly as MLflow lays them out so that MLflow's environment managers
(and ours, later) can rebuild the model's environment from them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from modelyard.format import _yaml
from modelyard.format.mlmodel import running_python_version

REQUIREMENTS_FILE = "requirements.txt"
PYTHON_ENV_FILE = "python_env.yaml"
CONDA_FILE = "conda.yaml"
CONSTRAINTS_FILE = "constraints.txt"

_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name (``Scikit_Learn`` -> ``scikit-learn``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str | None:
    """The distribution name a requirement line is about, or ``None`` (paths, URLs, options)."""
    if line.startswith(("-", ".", "/")) or "://" in line:
        return None
    m = _NAME_RE.match(line)
    return canonical_name(m.group(1)) if m else None


def installed_version(dist: str) -> str | None:
    """The installed version of a distribution, without importing it."""
    import importlib.metadata  # ~15 ms: paid on first use, not at import

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def pinned(dist: str) -> str:
    """``dist==<installed version>``, or the bare name when it is not installed."""
    version = installed_version(dist)
    return f"{dist}=={version}" if version else dist


def merge_requirements(
    defaults: Sequence[str],
    pip_requirements: Iterable[str] | None = None,
    extra_pip_requirements: Iterable[str] | None = None,
) -> list[str]:
    """The final requirement list.

    ``pip_requirements`` replaces the flavor's defaults; ``extra_pip_requirements``
    is added to them, and where both name the same package the user's line wins.
    Order is kept, duplicates dropped.
    """
    base = list(pip_requirements) if pip_requirements is not None else list(defaults)
    extra = list(extra_pip_requirements or ())
    extra_names = {n for n in map(requirement_name, extra) if n}
    merged = [r for r in base if requirement_name(r) not in extra_names] + extra
    seen: set[str] = set()
    out = []
    for r in (line.strip() for line in merged):
        if r and r not in seen:
            seen.add(r)
            out.append(r)
    return out


def write_environment_files(model_dir: Path, requirements: Sequence[str]) -> None:
    """Write ``requirements.txt``, ``python_env.yaml`` and ``conda.yaml``."""
    python = running_python_version()
    (model_dir / REQUIREMENTS_FILE).write_text("\n".join(requirements), encoding="utf-8")
    build = [pinned("pip"), pinned("setuptools"), pinned("wheel")]
    python_env = {
        "python": python,
        "build_dependencies": [b for b in build if "==" in b] or ["pip"],
        "dependencies": [f"-r {REQUIREMENTS_FILE}"],
    }
    (model_dir / PYTHON_ENV_FILE).write_text(_yaml.dump(python_env, sort_keys=False), "utf-8")
    pip_version = installed_version("pip")
    conda = {
        "name": "mlflow-env",
        "channels": ["conda-forge"],
        "dependencies": [
            f"python={python}",
            f"pip<={pip_version}" if pip_version else "pip",
            {"pip": list(requirements)},
        ],
    }
    (model_dir / CONDA_FILE).write_text(_yaml.dump(conda, sort_keys=False), "utf-8")


def read_requirements(model_dir: Path, file: str = REQUIREMENTS_FILE) -> list[str]:
    """Requirement lines of a model, following ``-r`` includes inside the model.

    Comments, blank lines, ``-c`` constraint files and other pip options are
    skipped; line continuations are joined. A missing file gives ``[]``.
    """
    return _read(model_dir, file, seen=set())


def _read(model_dir: Path, file: str, seen: set[str]) -> list[str]:
    path = (model_dir / file).resolve()
    if str(path) in seen or not path.is_relative_to(model_dir.resolve()):
        return []
    seen.add(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return []
    out: list[str] = []
    for raw in text.replace("\\\n", "").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            out += _read(model_dir, line.split(maxsplit=1)[1], seen)
        elif not line.startswith("-"):
            out.append(line)
    return out
