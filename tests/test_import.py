"""`import modelyard` stays light: no ML framework, no pandas, no numpy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import modelyard

# Top-level packages `import modelyard` must never pull in: frameworks (each flavor
# imports its own when it loads), the data stack, the engines behind the lazy
# submodules, and MLflow.
HEAVY = [
    "numpy",
    "pandas",
    "pyarrow",
    "sklearn",
    "torch",
    "skops",
    "cloudpickle",
    "yaml",
    "sqlalchemy",
    "mlflow",
    "boto3",
    "botocore",
    "xgboost",
    "lightgbm",
    "pyspark",
    "starlette",
    "uvicorn",
]


def _imported_after(code: str) -> list[str]:
    """Heavy top-level packages imported once ``code`` ran in a fresh interpreter."""
    probe = (
        f"import json, sys\n{code}\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    found: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def test_import_pulls_in_no_framework() -> None:
    assert _imported_after("import modelyard") == []


def test_flavor_registry_pulls_in_no_framework() -> None:
    # Listing (and so instantiating) every built-in flavor, xgboost and lightgbm
    # included, must not import a framework: they import theirs on save/load.
    code = (
        "import modelyard\n"
        "from modelyard.flavors import get_flavor, list_flavors\n"
        "[get_flavor(n) for n in list_flavors()]"
    )
    assert _imported_after(code) == []


@pytest.mark.parametrize(
    ("name", "attribute"),
    [("spark", "udf"), ("serving", "__all__"), ("batch", "__doc__")],
)
def test_lazy_submodules_are_attributes_without_their_engine(name: str, attribute: str) -> None:
    # `import modelyard; modelyard.spark.udf(...)` works without importing
    # modelyard.spark first, and reaching it still imports no engine (pyspark is
    # imported by udf() itself, when it runs).
    code = (
        "import modelyard, sys\n"
        f"assert 'modelyard.{name}' not in sys.modules\n"
        f"assert getattr(modelyard.{name}, {attribute!r}) is not None\n"
        f"assert '{name}' in dir(modelyard)"
    )
    assert _imported_after(code) == []


def test_unknown_attribute_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        modelyard.no_such_thing


def test_all_is_sorted_and_complete() -> None:
    import types

    public = {
        n
        for n, v in vars(modelyard).items()
        if not n.startswith("_") and n != "annotations" and not isinstance(v, types.ModuleType)
    }
    assert modelyard.__all__ == sorted(modelyard.__all__)
    assert public <= set(modelyard.__all__)
    for name in modelyard.__all__:
        assert hasattr(modelyard, name)
