"""Isolated model environments, built with uv from the model's own requirements.

An environment is keyed by the hash of the Python version and the
requirements (plus how modelyard gets into it), so every model with the same
needs shares one, built once::

    ~/.cache/modelyard/envs/<key>/          the virtual environment
    ~/.cache/modelyard/envs/<key>.lock      held while it is being built

``MODELYARD_ENV_ROOT`` moves the root. A finished environment holds
``modelyard-env.json``; one without it (a build that died) is rebuilt.

What goes in: the model's ``requirements.txt`` (and plain entries of
``python_env.yaml``) without ``mlflow`` (modelyard loads MLflow models on its
own), plus what the model process itself needs (numpy, pandas, pyarrow,
pyyaml, packaging, cloudpickle; unpinned, so the model's pins win), plus this
modelyard: linked to its source folder for a development checkout, copied
otherwise. The Python is the model's ``major.minor``, found by uv.

>>> env = ensure_env(Path("./iris-model"))    # doctest: +SKIP
>>> env.python                                # doctest: +SKIP
PosixPath('/root/.cache/modelyard/envs/3f2a.../bin/python')
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from modelyard._locks import file_lock
from modelyard._paths import envs_root
from modelyard.errors import EnvironmentBuildError

#: what the model process needs besides the model's own requirements
RUNTIME = ("numpy", "pandas", "pyarrow", "pyyaml", "packaging", "cloudpickle", "cryptography")
#: requirements left out: modelyard brings its own loader for MLflow models
DROPPED = frozenset({"mlflow", "mlflow-skinny", "mlflow-tracing", "modelyard"})
MARKER = "modelyard-env.json"
_FORMAT = 1


@dataclass(frozen=True)
class EnvSpec:
    """What an environment holds: a Python ``major.minor`` and requirement lines."""

    python: str
    requirements: tuple[str, ...]

    @property
    def key(self) -> str:
        """Hash of everything that makes two environments differ."""
        payload = {
            "format": _FORMAT,
            "runtime": RUNTIME,
            "python": self.python,
            "requirements": sorted(self.requirements),
            "modelyard": _modelyard_source(),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Env:
    """A built environment."""

    path: Path
    spec: EnvSpec
    #: True when this call built it, False when it came from the cache
    built: bool
    seconds: float = 0.0

    @property
    def python(self) -> Path:
        """The environment's interpreter."""
        return self.path / "bin" / "python"


def model_env_spec(model_dir: Path) -> EnvSpec:
    """The environment a model directory asks for."""
    from modelyard.format import _yaml
    from modelyard.format.environment import PYTHON_ENV_FILE, read_requirements, requirement_name
    from modelyard.format.mlmodel import MLmodel

    python = None
    lines = read_requirements(model_dir)
    env_file = model_dir / PYTHON_ENV_FILE
    if env_file.is_file():
        data = _yaml.load(env_file.read_text(encoding="utf-8")) or {}
        python = str(data.get("python") or "") or None
        deps = (str(d).strip() for d in data.get("dependencies") or ())
        lines += [d for d in deps if d and not d.startswith("-")]
    if python is None:
        python = MLmodel.read(model_dir).python_version
    if not python:
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
    kept = [r for r in dict.fromkeys(lines) if requirement_name(r) not in DROPPED]
    return EnvSpec(python=".".join(python.split(".")[:2]), requirements=tuple(kept))


def ensure_env(model_dir: Path, *, root: Path | None = None, rebuild: bool = False) -> Env:
    """The model's environment, built first if it is not in the cache."""
    return build_env(model_env_spec(model_dir), root=root, rebuild=rebuild)


def build_env(spec: EnvSpec, *, root: Path | None = None, rebuild: bool = False) -> Env:
    """The environment for ``spec``: from the cache, or built now (once, under a lock)."""
    from modelyard.format.environment import requirement_name

    root = root or envs_root()
    dest = root / spec.key
    with file_lock(root / f"{spec.key}.lock"):
        if (dest / MARKER).is_file() and not rebuild:
            return Env(dest, spec, built=False)
        started = time.perf_counter()
        shutil.rmtree(dest, ignore_errors=True)
        uv = find_uv()
        named = {requirement_name(r) for r in spec.requirements}
        runtime = [r for r in RUNTIME if r not in named]
        try:
            _run([uv, "venv", "--quiet", "--python", spec.python, str(dest)], dest)
            python = dest / "bin" / "python"
            # No --compile-bytecode: it compiles every module of every package (scipy...),
            # which made a cold build 1.3x MLflow's; what the model imports compiles on use.
            install = [uv, "pip", "install", "--quiet", "--python", str(python)]
            _run([*install, *spec.requirements, *runtime], dest)
            _install_modelyard(python)
            (dest / MARKER).write_text(
                json.dumps(
                    {
                        "python": spec.python,
                        "requirements": list(spec.requirements),
                        "runtime": runtime,
                        "modelyard": _modelyard_source(),
                    },
                    indent=2,
                )
            )
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return Env(dest, spec, built=True, seconds=time.perf_counter() - started)


def find_uv() -> str:
    """The uv binary: from the ``uv`` package (``modelyard[uv]``), else from PATH."""
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if found is None:
        raise EnvironmentBuildError(
            envs_root(), "uv is not installed: pip install 'modelyard[uv]' (or put uv on PATH)"
        )
    return found


def _run(cmd: list[str], where: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shown = " ".join(cmd[1:4])
        raise EnvironmentBuildError(
            where, f"`uv {shown} ...` exited with {proc.returncode}", log=proc.stderr + proc.stdout
        )


def _modelyard_source() -> str:
    """How modelyard gets into environments: its source folder, or ``copy:<version>``."""
    import modelyard

    package = Path(modelyard.__file__).resolve().parent
    if package.parent.name in ("site-packages", "dist-packages"):
        return f"copy:{modelyard.__version__}"
    return f"link:{package.parent}"


def _install_modelyard(python: Path) -> None:
    import modelyard

    proc = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        env=_clean_env(),
    )
    site = Path(proc.stdout.strip())
    package = Path(modelyard.__file__).resolve().parent
    source = _modelyard_source()
    if source.startswith("link:"):
        # A development checkout: the environment follows the source as it changes.
        (site / "modelyard.pth").write_text(str(package.parent) + "\n")
    else:
        shutil.copytree(
            package, site / "modelyard", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )


def _clean_env() -> dict[str, str]:
    """This process's environment for a child in a model environment.

    Without what would leak this process's packages into it, and with bytecode
    written (see below).
    """
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "__PYVENV_LAUNCHER__")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    # The environments are a cache of ours, built without bytecode (compiling every
    # module of every package made builds slow): what a model imports is compiled on
    # its first start and kept. PYTHONDONTWRITEBYTECODE, common in containers, would
    # make every start compile pandas and scikit-learn again (6-8 s here).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env
