"""The built-in allow-list: what its class and kind rules let through, and what they do not."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from modelyard.cli import main
from modelyard.errors import ConfigError, UntrustedModel
from modelyard.trust.allowlist import builtin, from_data, parse_entry
from modelyard.trust.policy import TrustPolicy, add_machine_entries, remove_machine_entries
from modelyard.trust.scan import Global, scan_bytes
from tests.trust._payloads import call


def _allows(module: str, qualname: str) -> bool:
    return builtin().allows(Global(module, qualname))


@pytest.mark.parametrize(
    ("module", "qualname"),
    [
        ("sklearn.linear_model", "LogisticRegression"),
        ("sklearn.linear_model._logistic", "LogisticRegression"),
        ("sklearn.ensemble._forest", "RandomForestClassifier"),
        ("sklearn.tree._tree", "Tree"),
        ("sklearn.pipeline", "Pipeline"),
        ("torch.nn.modules.linear", "Linear"),
        ("scipy.sparse._csr", "csr_matrix"),
        ("numpy", "add"),  # a ufunc
        ("numpy", "float64"),  # a scalar type
        ("collections", "OrderedDict"),
    ],
)
def test_what_honest_models_use_is_allowed(module: str, qualname: str) -> None:
    assert _allows(module, qualname)


@pytest.mark.parametrize(
    ("module", "qualname"),
    [
        # re-exported inside sklearn, defined elsewhere: the class rule reads __module__
        ("sklearn.utils.validation", "reduce"),  # functools.reduce
        ("sklearn.utils.validation", "wraps"),
        ("sklearn.pipeline", "deepcopy"),
        ("sklearn.utils.fixes", "laplacian"),  # a scipy function
        ("sklearn.utils.parallel", "ThreadpoolController"),  # a class from threadpoolctl
        ("sklearn.base", "defaultdict"),  # collections' class under sklearn's name
        # functions defined in sklearn are no classes
        ("sklearn.utils.validation", "check_array"),
        ("sklearn.utils.parallel", "delayed"),
        # left out of the rule
        ("sklearn.utils._testing", "TempMemmap"),
        ("sklearn.utils._testing", "assert_allclose"),
        ("sklearn.utils", "_testing.TempMemmap"),  # reached by a dotted walk
        ("sklearn.datasets", "fetch_openml"),
        ("sklearn.utils._show_versions", "show_versions"),
        # a qualname that walks out of an allowed class
        ("sklearn.linear_model", "LogisticRegression.__init__.__globals__"),
        ("sklearn.linear_model", "LogisticRegression.__class__"),
        ("torch.nn.modules.module", "Module.__init__.__globals__"),
        # numpy: only ufuncs, scalar types and the exact names
        ("numpy", "memmap"),
        ("numpy", "load"),
        ("numpy", "save"),
        ("numpy", "frompyfunc"),
        ("numpy", "vectorize"),
        ("numpy.lib.format", "read_array"),
        ("numpy.f2py", "run_main"),
        ("numpy.f2py.crackfortran", "getlincoef"),
        ("numpy.f2py.__main__", "main"),
        ("numpy.testing._private.utils", "runstring"),
        ("numpy.ctypeslib", "load_library"),
        # exact names only: nothing else of an allowed module
        ("collections", "namedtuple"),
        ("builtins", "getattr"),
        ("builtins", "eval"),
        ("copyreg", "add_extension"),
        ("torch", "load"),
        ("torch.serialization", "load"),
    ],
)
def test_what_runs_code_is_refused(module: str, qualname: str) -> None:
    assert not _allows(module, qualname)
    with pytest.raises(UntrustedModel) as caught:
        TrustPolicy().admit(scan_bytes(call(module, qualname, proto=4, stack=True)), "m.pkl")
    assert caught.value.globals == (str(Global(module, qualname)),)


def test_judging_a_name_never_imports_a_module_that_runs_code() -> None:
    for module in ("numpy.f2py.__main__", "numpy._core.tests.examples.cython.setup"):
        assert not _allows(module, "main")
        assert module not in sys.modules


@pytest.mark.parametrize(
    "entry", ["", "os", "os.", ".system", "os system", "os.sys tem", "a..b", "pkg.*.x", "x:", ":y"]
)
def test_a_malformed_entry_is_named(entry: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_entry(entry)
    assert repr(entry) in str(caught.value)


def test_entry_forms() -> None:
    assert parse_entry("mypkg.models.MyModel") == Global("mypkg.models", "MyModel")
    assert parse_entry("mypkg.models:Outer.Inner") == Global("mypkg.models", "Outer.Inner")
    assert parse_entry("mypkg.*") == "mypkg"
    allowed = builtin().with_entries(["mypkg.*"])
    assert allowed.allows(Global("mypkg.sub", "Anything"))
    assert not allowed.allows(Global("mypkgx", "Anything"))


def test_a_malformed_list_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown kind"):
        from_data({"version": "x", "kinds": {"callable": ["os"]}}, source="bad.yaml")
    with pytest.raises(ConfigError, match="must be a list"):
        from_data({"globals": {"os": "system"}}, source="bad.yaml")


def test_trust_show_prints_the_version_and_the_machine_entries() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["trust", "show"])
    assert result.exit_code == 0, result.output
    assert f"version {builtin().version}" in result.output
    assert "any class defined in sklearn" in result.output
    assert "sklearn.utils._testing" in result.output

    added = runner.invoke(main, ["trust", "add", "collections.ChainMap"])
    try:
        assert added.exit_code == 0, added.output
        assert "collections.ChainMap" in runner.invoke(main, ["trust", "show"]).output
    finally:
        remove_machine_entries(["collections.ChainMap"])
    assert "collections.ChainMap" not in runner.invoke(main, ["trust", "show"]).output


def test_trust_add_refuses_a_malformed_entry() -> None:
    result = CliRunner().invoke(main, ["trust", "add", "not a name"])
    assert result.exit_code != 0
    assert "not a name" in result.output
    with pytest.raises(ConfigError, match="not a name"):
        add_machine_entries(["not a name"])
