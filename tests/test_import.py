"""`import modelyard` stays light: no ML framework, no pandas, no numpy."""

from __future__ import annotations

import subprocess
import sys

import modelyard


def test_import_pulls_in_no_framework() -> None:
    code = (
        "import sys, modelyard; "
        "heavy = {'numpy', 'pandas', 'sklearn', 'torch', 'skops', 'cloudpickle', 'yaml', "
        "'sqlalchemy', 'mlflow', 'boto3', 'botocore'}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


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
