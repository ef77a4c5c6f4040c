"""``save_model``: write any supported object as an MLflow-compatible model directory."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard._version import __version__
from modelyard.errors import ModelyardError, SaveError
from modelyard.flavors import flavor_for_object, get_flavor
from modelyard.format.content import ContentManifest
from modelyard.format.enforce import SignatureEnforcer
from modelyard.format.environment import (
    CONDA_FILE,
    PYTHON_ENV_FILE,
    merge_requirements,
    write_environment_files,
)
from modelyard.format.example import save_example
from modelyard.format.mlmodel import PYFUNC, MLmodel, running_python_version
from modelyard.format.signature import Signature, infer_signature

if TYPE_CHECKING:
    from modelyard.trust.keys import SigningKey

logger = logging.getLogger("modelyard")

CODE_DIR = "code"


@dataclass(frozen=True)
class ModelInfo:
    """What was saved: where, under which digest, with which flavor."""

    path: Path
    digest: str
    flavor: str
    model_uuid: str
    signature: Signature | None
    #: the id of the key that signed ``MANIFEST.sig``, or ``None`` when unsigned
    signed_by: str | None = None


def save_model(
    obj: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    signature: Signature | Mapping[str, Any] | None = None,
    input_example: Any = None,
    pip_requirements: Iterable[str] | None = None,
    extra_pip_requirements: Iterable[str] | None = None,
    code_paths: Iterable[str | os.PathLike[str]] | None = None,
    model_config: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    sign: bool | str | os.PathLike[str] | SigningKey | None = None,
    **flavor_options: Any,
) -> ModelInfo:
    """Save ``obj`` as a model directory at ``path``.

    The flavor is picked from the object's type unless ``flavor`` names one.
    Flavor-specific options pass through ``flavor_options`` (sklearn:
    ``serialization_format``, ``predict_fn``; python_model: ``artifacts``; ...).

    The directory is built in a temporary sibling and renamed into place, so a
    failure leaves nothing at ``path``. ``path`` must not exist or be empty.

    The model is signed (``MANIFEST.sig``, see :mod:`modelyard.trust.signing`):
    by default with the user's ``default`` key, created on first use; if that
    key cannot be had, a warning is logged and the model is saved unsigned.
    ``sign=True`` requires the signature, ``sign=False`` skips it, and a key
    name, a path to a PEM private key, or a
    :class:`~modelyard.trust.keys.SigningKey` signs with that key.

    >>> save_model(LogisticRegression().fit(X, y), "iris-model")  # doctest: +SKIP
    """
    dest = Path(path)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise SaveError(dest, "the destination exists and is not an empty directory")
    chosen = get_flavor(flavor) if flavor else flavor_for_object(obj)
    key = _signing_key(sign, dest)  # before any work: a bad key name fails at once
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        mlmodel = _build(
            obj,
            tmp,
            chosen.name,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            code_paths=code_paths,
            model_config=model_config,
            metadata=metadata,
            flavor_options=flavor_options,
        )
        manifest = ContentManifest.build(tmp)
        manifest.write(tmp)
        if key is not None:
            from modelyard.trust.signing import sign_manifest, write_signature_file

            # Inside the temporary folder: the model appears signed or not at all.
            write_signature_file(tmp, sign_manifest(manifest, key))
        if dest.exists():
            dest.rmdir()  # empty, checked above; rename cannot replace it portably
        os.replace(tmp, dest)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, SaveError) or not isinstance(exc, Exception):
            raise
        reason = str(exc) if isinstance(exc, ModelyardError) else f"{type(exc).__name__}: {exc}"
        raise SaveError(dest, reason) from exc
    return ModelInfo(
        path=dest,
        digest=manifest.digest,
        flavor=chosen.name,
        model_uuid=str(mlmodel.model_uuid),
        signature=_signature_of(mlmodel),
        signed_by=key.key_id if key is not None else None,
    )


def _signing_key(
    sign: bool | str | os.PathLike[str] | SigningKey | None, dest: Path
) -> SigningKey | None:
    """The key ``sign`` asks for (see :func:`save_model`); ``None`` means unsigned."""
    if sign is False:
        return None
    from modelyard.trust.keys import SigningKey, default_key, load_signing_key

    if isinstance(sign, SigningKey):
        return sign
    if sign is None:
        try:
            return default_key(create=True)
        except (ModelyardError, OSError) as exc:
            # Signing by default must not cost anyone a model they could save before.
            logger.warning("saving %s unsigned: no signing key (%s)", dest, exc)
            return None
    try:
        return default_key(create=True) if sign is True else load_signing_key(sign)
    except (ModelyardError, OSError) as exc:
        raise SaveError(dest, f"cannot sign: {exc}") from exc


def _build(
    obj: Any,
    tmp: Path,
    flavor_name: str,
    *,
    signature: Signature | Mapping[str, Any] | None,
    input_example: Any,
    pip_requirements: Iterable[str] | None,
    extra_pip_requirements: Iterable[str] | None,
    code_paths: Iterable[str | os.PathLike[str]] | None,
    model_config: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    flavor_options: Mapping[str, Any],
) -> MLmodel:
    flavor = get_flavor(flavor_name)
    saved = flavor.save(obj, tmp, flavor_options)
    code = _copy_code(code_paths, tmp)
    size = ContentManifest.build(tmp).total_size

    pyfunc: dict[str, Any] = {
        **saved.pyfunc_conf,
        "python_version": running_python_version(),
        "env": {"conda": CONDA_FILE, "virtualenv": PYTHON_ENV_FILE},
    }
    if code:
        pyfunc["code"] = code
    if model_config:
        pyfunc["config"] = dict(model_config)
    flavors: dict[str, Any] = {PYFUNC: pyfunc}
    if saved.flavor_conf:
        flavors[flavor.name] = {**saved.flavor_conf, **({"code": code} if code else {})}

    extra: dict[str, Any] = {"model_size_bytes": size, "modelyard_version": __version__}
    if input_example is not None:
        extra["saved_input_example_info"] = save_example(tmp, input_example)
        if signature is None:
            probe = MLmodel({"flavors": flavors}, path=tmp)
            signature = _infer_from_example(obj, flavor.predictor, probe, input_example)
    if signature is not None:
        sig = signature if isinstance(signature, Signature) else Signature.from_mlmodel(signature)
        extra["signature"] = sig.to_mlmodel()
    mlmodel = MLmodel.new(flavors=flavors, metadata=metadata, **saved.extra, **extra)

    requirements = merge_requirements(saved.requirements, pip_requirements, extra_pip_requirements)
    write_environment_files(tmp, requirements)
    mlmodel.write(tmp)
    return mlmodel


def _copy_code(code_paths: Iterable[str | os.PathLike[str]] | None, tmp: Path) -> str | None:
    if not code_paths:
        return None
    code_dir = tmp / CODE_DIR
    code_dir.mkdir()
    for p in map(Path, code_paths):
        if not p.exists():
            raise FileNotFoundError(f"code path {str(p)!r} does not exist")
        target = code_dir / p.name
        if p.is_dir():
            shutil.copytree(p, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(p, target)
    return CODE_DIR


def _infer_from_example(obj: Any, predictor: Any, probe: MLmodel, input_example: Any) -> Signature:
    """The example's signature; outputs too when the model predicts on the example.

    As MLflow does, the model is run once on the example to record its output
    schema. Warnings from that run are silenced, and a model that cannot
    predict there (it needs ``load_context``, a network, ...) is saved with
    inputs and params only.
    """
    data, params = input_example, None
    pair = isinstance(input_example, tuple) and len(input_example) == 2
    if pair and isinstance(input_example[1], Mapping):
        data, params = input_example
    signature = infer_signature(data, params=params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ready, ready_params = SignatureEnforcer(signature)(data, params)
            output = predictor(obj, probe, {})(ready, ready_params)
            outputs = infer_signature(output).inputs
    except Exception as exc:
        logger.info("no output schema recorded: predicting on the input example failed (%r)", exc)
        return signature
    return Signature(signature.inputs, outputs, signature.params)


def _signature_of(mlmodel: MLmodel) -> Signature | None:
    block = mlmodel.signature
    return Signature.from_mlmodel(block) if block else None
