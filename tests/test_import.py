"""`import modelyard` stays light: no ML framework, no pandas, no numpy."""

from __future__ import annotations

import subprocess
import sys

import modelyard


def test_import_pulls_in_no_framework() -> None:
    code = (
        "import sys, modelyard; "
        "heavy = {'numpy', 'pandas', 'sklearn', 'torch', 'skops', 'cloudpickle', 'yaml', "
        "'sqlalchemy', 'mlflow'}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_all_is_sorted_and_complete() -> None:
    public = sorted(n for n in vars(modelyard) if not n.startswith("_") and n != "annotations")
    exported = [n for n in modelyard.__all__ if n != "__version__"]
    assert modelyard.__all__ == sorted(modelyard.__all__)
    missing = (
        set(public)
        - set(modelyard.__all__)
        - {"errors", "flavors", "format", "loading", "model", "saving", "uri"}
    )
    assert not missing
    for name in exported:
        assert hasattr(modelyard, name)
