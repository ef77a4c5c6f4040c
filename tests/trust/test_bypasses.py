"""Every bypass of trust.md §3, as an attacker would write it: refused before anything runs.

Each payload (:mod:`tests.trust._payloads`) is checked twice: by the scan and
the built-in policy directly, and end to end through ``load_model`` in real
model directories (sklearn, python_model plain and gzipped, a torch archive
whose ``data.pkl`` is replaced). Every test asserts the refusal *and* that the
sentinel file the payload would create does not exist.
"""

from __future__ import annotations

import bz2
import collections
import gzip
import io
import lzma
import pickle
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import modelyard
from modelyard.errors import CorruptModelFile, TrustError, UnsafePickle, UntrustedModel
from modelyard.trust.policy import (
    TrustPolicy,
    add_machine_entries,
    machine_entries,
    remove_machine_entries,
)
from modelyard.trust.scan import scan_bytes
from tests.trust._payloads import PAYLOADS, Payload, call, expansion_bomb, recorded, touch

SENTINEL = "PWNED"
_MODULES_NEVER_IMPORTED = ("numpy.f2py.__main__", "numpy._core.tests.examples.cython.setup")


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    return tmp_path / SENTINEL


def _refused(exc: TrustError, payload: Payload) -> None:
    if payload.unsafe:
        assert isinstance(exc, UnsafePickle), exc
    if payload.names:
        assert isinstance(exc, UntrustedModel), exc
        assert set(payload.names) <= set(exc.globals), (payload.names, exc.globals)
        for name in payload.names:
            assert name in str(exc)


# -- (a) the scan and the policy -------------------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS, ids=str)
def test_payload_is_refused_by_scan_and_policy(payload: Payload, sentinel: Path) -> None:
    data = payload.build(str(sentinel))
    with pytest.raises(TrustError) as caught:
        TrustPolicy().admit(scan_bytes(data, source="payload.pkl"), "payload.pkl")
    _refused(caught.value, payload)
    assert not sentinel.exists()
    for module in _MODULES_NEVER_IMPORTED:
        assert module not in sys.modules, f"judging the pickle imported {module}"


@pytest.mark.parametrize("payload", PAYLOADS, ids=str)
def test_payload_reaches_its_globals_in_cpython(payload: Payload, sentinel: Path) -> None:
    # Well formed: CPython's unpickler would hand these names to find_class
    # (the recording find_class returns inert stand-ins; nothing is imported).
    seen = recorded(payload.build(str(sentinel)))
    assert set(payload.reaches) <= set(seen), seen
    first = recorded(payload.build(str(sentinel)), strict=True)
    assert first == seen[:1]
    assert not sentinel.exists()


# -- (b) end to end, in model directories ---------------------------------------------


def _write_mlmodel(path: Path, flavors: dict[str, Any]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "MLmodel").write_text(yaml.safe_dump({"flavors": flavors}), encoding="utf-8")


def sklearn_dir(path: Path, data: bytes, *, file: str = "model.pkl", **extra: Any) -> Path:
    """An MLflow sklearn model whose pickle is ``data``."""
    _write_mlmodel(
        path,
        {
            "python_function": {"loader_module": "mlflow.sklearn", "model_path": file},
            "sklearn": {"pickled_model": file, "serialization_format": "cloudpickle", **extra},
        },
    )
    (path / file).write_bytes(data)
    return path


_COMPRESSORS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "gzip": (gzip.compress, ".gz"),
    "bzip2": (bz2.compress, ".bz2"),
    "lzma": (lzma.compress, ".xz"),
}


def python_model_dir(path: Path, data: bytes, *, compression: str | None = None) -> Path:
    """An MLflow python_model (``python_model.pkl`` or MLflow's compressed ``.pkl.gz`` etc.)."""
    conf: dict[str, Any] = {"loader_module": "mlflow.pyfunc.model"}
    file = "python_model.pkl"
    if compression:
        compress, suffix = _COMPRESSORS[compression]
        data, file = compress(data), file + suffix
        conf["python_model_compression"] = compression
    conf["python_model"] = file
    _write_mlmodel(path, {"python_function": conf})
    (path / file).write_bytes(data)
    return path


@pytest.fixture(scope="module")
def torch_archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real ``torch.save`` zip of a whole module."""
    import torch

    file = tmp_path_factory.mktemp("torch") / "model.pth"
    torch.save(torch.nn.Linear(2, 1), file)
    return file.read_bytes()


def rewrite_zip(
    archive: bytes, replace: dict[str, bytes], *, duplicate: str | None = None
) -> bytes:
    """``archive`` with entries ending in a name of ``replace`` rewritten (stored)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            tail = info.filename.rsplit("/", 1)[-1]
            data = replace.get(tail, src.read(info))
            dst.writestr(info.filename, data, compress_type=zipfile.ZIP_STORED)
            if duplicate == tail:
                with pytest.warns(UserWarning, match="Duplicate"):
                    dst.writestr(info.filename, data, compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def pytorch_dir(path: Path, model_pth: bytes) -> Path:
    """An MLflow pytorch model whose ``data/model.pth`` is ``model_pth``."""
    _write_mlmodel(
        path,
        {
            "python_function": {
                "loader_module": "mlflow.pytorch",
                "data": "data",
                "pickle_module_name": "mlflow.pytorch.pickle_module",
            },
            "pytorch": {"model_data": "data"},
        },
    )
    (path / "data").mkdir()
    (path / "data" / "model.pth").write_bytes(model_pth)
    return path


FLAVORS = ["sklearn", "python_model", "python_model.gz", "pytorch"]


@pytest.mark.parametrize("where", FLAVORS)
@pytest.mark.parametrize("payload", PAYLOADS, ids=str)
def test_payload_in_a_model_is_refused_by_load_model(
    payload: Payload, where: str, tmp_path: Path, sentinel: Path, torch_archive: bytes
) -> None:
    data = payload.build(str(sentinel))
    model = tmp_path / "model"
    if where == "sklearn":
        sklearn_dir(model, data)
    elif where == "python_model":
        python_model_dir(model, data)
    elif where == "python_model.gz":
        python_model_dir(model, data, compression="gzip")
    else:
        pytorch_dir(model, rewrite_zip(torch_archive, {"data.pkl": data}))
    with pytest.raises(TrustError) as caught:
        modelyard.load_model(model)
    _refused(caught.value, payload)
    assert not sentinel.exists()


def test_the_templates_load_when_honest(
    tmp_path: Path, torch_archive: bytes, iris_model: Any
) -> None:
    # the directories above are real models: honest content loads from each of them
    honest = pickle.dumps(iris_model)
    assert modelyard.load_model(sklearn_dir(tmp_path / "sk", honest)).unwrap() is not None
    assert modelyard.load_model(pytorch_dir(tmp_path / "pt", torch_archive)).unwrap() is not None


# -- C: containers, names and compression ---------------------------------------------


def _os_system(sentinel: Path) -> bytes:
    return call("os", "system", touch(str(sentinel)))


@pytest.mark.parametrize("file", ["model.config", "data", "model.cloudpickle", "weights.bin"])
def test_a_pickle_under_any_name_is_scanned(file: str, tmp_path: Path, sentinel: Path) -> None:
    # C21: the content is judged, never the file name
    model = sklearn_dir(tmp_path / "m", _os_system(sentinel), file=file)
    with pytest.raises(UntrustedModel, match=r"os\.system"):
        modelyard.load_model(model)
    assert not sentinel.exists()


def test_a_plain_pickle_named_like_a_torch_archive(tmp_path: Path, sentinel: Path) -> None:
    # C22 (and B19: legacy torch files): a .pth that is no zip is refused, not loaded otherwise
    with pytest.raises(UnsafePickle, match="not a torch zip archive"):
        modelyard.load_model(pytorch_dir(tmp_path / "m", _os_system(sentinel)))
    assert not sentinel.exists()


def test_a_torch_archive_with_a_duplicate_entry(
    tmp_path: Path, sentinel: Path, torch_archive: bytes
) -> None:
    # C23: two data.pkl entries; which one a reader picks is the reader's choice
    archive = rewrite_zip(torch_archive, {"data.pkl": _os_system(sentinel)}, duplicate="data.pkl")
    with pytest.raises(TrustError, match="twice"):
        modelyard.load_model(pytorch_dir(tmp_path / "m", archive))
    assert not sentinel.exists()


def test_a_torch_archive_with_its_pickle_missing(tmp_path: Path, torch_archive: bytes) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(torch_archive)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if not info.filename.endswith("/data.pkl"):
                dst.writestr(info.filename, src.read(info))
    with pytest.raises(TrustError):
        modelyard.load_model(pytorch_dir(tmp_path / "m", out.getvalue()))


@pytest.mark.parametrize("where", ["sklearn", "pytorch"])
def test_a_7z_archive_is_refused(where: str, tmp_path: Path) -> None:
    # C25: no container is followed that the loader does not read itself
    seven = b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24)
    model = tmp_path / "m"
    (sklearn_dir if where == "sklearn" else pytorch_dir)(model, seven)
    # the pickle loader refuses it; the torch loader calls a file that is no zip corrupt
    with pytest.raises(UnsafePickle if where == "sklearn" else (TrustError, CorruptModelFile)):
        modelyard.load_model(model)


@pytest.mark.parametrize("compression", sorted(_COMPRESSORS))
def test_a_compressed_python_model_is_decompressed_and_scanned(
    compression: str, tmp_path: Path, sentinel: Path
) -> None:
    # C26: MLflow's python_model.pkl.gz/.bz2/.xz
    model = python_model_dir(tmp_path / "m", _os_system(sentinel), compression=compression)
    with pytest.raises(UntrustedModel, match=r"os\.system"):
        modelyard.load_model(model)
    assert not sentinel.exists()


@pytest.mark.parametrize(
    "compress", [gzip.compress, bz2.compress, lzma.compress, lambda b: b"\x78\x9c" + b]
)
def test_a_compressed_pickle_the_flavor_does_not_decompress(
    compress: Any, tmp_path: Path, sentinel: Path
) -> None:
    # C26: a compressed stream where a pickle is expected is no pickle: refused, never skipped
    model = sklearn_dir(tmp_path / "m", compress(_os_system(sentinel)))
    with pytest.raises(UnsafePickle):
        modelyard.load_model(model)
    assert not sentinel.exists()


def test_an_npy_with_an_object_dtype(tmp_path: Path, sentinel: Path) -> None:
    # C28: the pickle after an npy header; as a model file the npy magic is no pickle
    buf = io.BytesIO()
    np.save(buf, np.array([collections.OrderedDict()], dtype=object), allow_pickle=True)
    npy = buf.getvalue()
    hostile = npy[: npy.index(b"\x80")] + _os_system(sentinel)
    with pytest.raises(UnsafePickle):
        modelyard.load_model(sklearn_dir(tmp_path / "m", hostile, file="model.npy"))
    # and where modelyard itself reads npy (arrays between processes) pickles are off
    from modelyard.isolation._wire import decode

    with pytest.raises(ValueError, match="allow_pickle"):
        decode("ndarray", None, hostile)
    assert not sentinel.exists()


# -- D: the loader must not undo the policy -------------------------------------------


def test_a_torchscript_archive_is_refused(tmp_path: Path) -> None:
    # D29: TorchScript is code, whatever weights_only would have said
    import torch

    file = tmp_path / "ts.pth"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 1)), str(file))
    with pytest.raises(UntrustedModel, match="TorchScript"):
        modelyard.load_model(pytorch_dir(tmp_path / "m", file.read_bytes()))


@pytest.mark.parametrize(
    "claim",
    [
        {"trust": "all"},
        {"trusted": ["os.system"]},
        {"skops_trusted_types": ["os.system"]},
        {"allow_pickle": True},
    ],
)
def test_trust_is_never_taken_from_the_model(
    claim: dict[str, Any], tmp_path: Path, sentinel: Path
) -> None:
    # D31: the MLmodel file is the attacker's too
    model = sklearn_dir(tmp_path / "m", _os_system(sentinel), **claim)
    doc = yaml.safe_load((model / "MLmodel").read_text())
    doc.update(claim)
    doc["flavors"]["python_function"].update(claim)
    (model / "MLmodel").write_text(yaml.safe_dump(doc))
    with pytest.raises(UntrustedModel, match=r"os\.system"):
        modelyard.load_model(model)
    assert not sentinel.exists()


def test_no_weaker_loader_after_a_refusal(
    tmp_path: Path, sentinel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # D30: a refusal is final: no plain pickle.load, no torch.load without weights_only
    import torch

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a fallback loader ran")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    for model in (
        sklearn_dir(tmp_path / "a", _os_system(sentinel)),
        python_model_dir(tmp_path / "b", _os_system(sentinel)),
        pytorch_dir(tmp_path / "c", _os_system(sentinel)),
    ):
        with pytest.raises(TrustError):
            modelyard.load_model(model)
    assert not sentinel.exists()


def test_an_expansion_bomb_meets_the_opcode_budget() -> None:
    # D33: tiny in bytes, 10**40 leaves if unrolled: the scan stays linear, and budgets hold
    bomb = expansion_bomb()
    assert len(bomb) < 2_000
    scan_bytes(bomb)  # linear in the stream: fine
    with pytest.raises(UnsafePickle, match="budget"):
        scan_bytes(bomb, max_opcodes=100)
    with pytest.raises(UnsafePickle, match="budget"):
        scan_bytes(b"\x80\x02" + b"N0" * 10_000 + b"N.", max_opcodes=1_000)


def test_a_deep_stack_meets_the_stack_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.trust import scan

    monkeypatch.setattr(scan, "MAX_STACK", 1_000)
    with pytest.raises(UnsafePickle, match="stack"):
        scan_bytes(b"\x80\x02" + b"N" * 2_000 + b".")


# -- the one allowed-outside-the-list global ----------------------------------------------


def _predicting(model: Path) -> Path:
    # a ChainMap has no predict: its .get stands in (MLflow's predict_fn)
    doc = yaml.safe_load((model / "MLmodel").read_text())
    doc["flavors"]["python_function"]["predict_fn"] = "get"
    (model / "MLmodel").write_text(yaml.safe_dump(doc))
    return model


def test_a_benign_global_loads_once_trusted(tmp_path: Path) -> None:
    # The only trust this suite grants: a harmless class, by name, per call and per machine.
    data = pickle.dumps(collections.ChainMap({"a": 1}), protocol=2)
    model = _predicting(sklearn_dir(tmp_path / "m", data))
    with pytest.raises(UntrustedModel, match=r"collections\.ChainMap"):
        modelyard.load_model(model)
    loaded = modelyard.load_model(model, trust=["collections.ChainMap"])
    assert loaded.unwrap() == collections.ChainMap({"a": 1})

    before = machine_entries()
    add_machine_entries(["collections.ChainMap"])
    try:
        assert modelyard.load_model(model).unwrap() == collections.ChainMap({"a": 1})
        # trusting a benign name admits nothing else in the same pickle
        hostile = _predicting(
            sklearn_dir(tmp_path / "h", data[:-1] + b"0" + call("os", "system", "true")[2:])
        )
        with pytest.raises(UntrustedModel, match=r"os\.system"):
            modelyard.load_model(hostile)
    finally:
        remove_machine_entries(["collections.ChainMap"])
    assert machine_entries() == before
