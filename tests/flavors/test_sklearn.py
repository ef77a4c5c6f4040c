"""sklearn flavor: the three serializations, and who decides what a skops file may hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import modelyard
from modelyard.errors import ConfigError, CorruptModelFile, UntrustedTypes
from modelyard.flavors._skops_trust import TREE
from modelyard.flavors.sklearn import is_safe_type


def double(x: Any) -> Any:
    """A user function a FunctionTransformer calls: code modelyard cannot vouch for."""
    return x * 2


@pytest.fixture(scope="module")
def Xy() -> tuple[pd.DataFrame, Any]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def _forest(Xy: tuple[pd.DataFrame, Any]) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = Xy
    rf = RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0)
    return make_pipeline(StandardScaler(), rf).fit(X, y)


def _flavor_conf(path: Path) -> dict[str, Any]:
    conf: dict[str, Any] = yaml.safe_load((path / "MLmodel").read_text())["flavors"]["sklearn"]
    return conf


@pytest.mark.parametrize("fmt", ["cloudpickle", "pickle", "skops"])
def test_each_format_round_trips(fmt: str, tmp_path: Path, Xy: Any) -> None:
    X, _ = Xy
    est = _forest(Xy)
    modelyard.save_model(est, tmp_path / "m", serialization_format=fmt)
    conf = _flavor_conf(tmp_path / "m")
    assert conf["serialization_format"] == fmt
    assert conf["pickled_model"] == ("model.skops" if fmt == "skops" else "model.pkl")
    model = modelyard.load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(X), est.predict(X))


def test_skops_records_for_mlflow_the_types_it_needs(tmp_path: Path, Xy: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = Xy
    modelyard.save_model(_forest(Xy), tmp_path / "rf", serialization_format="skops")
    assert _flavor_conf(tmp_path / "rf")["skops_trusted_types"] == [TREE]
    lr = LogisticRegression(max_iter=500).fit(X, y)
    modelyard.save_model(lr, tmp_path / "lr", serialization_format="skops")
    assert _flavor_conf(tmp_path / "lr")["skops_trusted_types"] is None


def _user_function_pipeline(Xy: Any) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = Xy
    return make_pipeline(FunctionTransformer(double), LogisticRegression(max_iter=500)).fit(X, y)


def test_user_function_needs_the_callers_trust(tmp_path: Path, Xy: Any) -> None:
    X, _ = Xy
    est = _user_function_pipeline(Xy)
    modelyard.save_model(est, tmp_path / "m", serialization_format="skops")
    user_type = f"{__name__}.double"
    # The list written for MLflow names the function; we must not act on it.
    assert _flavor_conf(tmp_path / "m")["skops_trusted_types"] == [user_type]
    with pytest.raises(UntrustedTypes) as info:
        modelyard.load_model(tmp_path / "m")
    assert info.value.types == (user_type,)
    assert "skops_trusted_types" in str(info.value)
    model = modelyard.load_model(tmp_path / "m", model_config={"skops_trusted_types": [user_type]})
    np.testing.assert_array_equal(model.predict(X), est.predict(X))


def test_library_functions_are_not_trusted_by_default(tmp_path: Path, Xy: Any) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, normalize

    X, y = Xy
    est = make_pipeline(FunctionTransformer(normalize), LogisticRegression(max_iter=500))
    modelyard.save_model(est.fit(X, y), tmp_path / "m", serialization_format="skops")
    with pytest.raises(UntrustedTypes, match=r"sklearn\.preprocessing\._data\.normalize"):
        modelyard.load_model(tmp_path / "m")


def test_trusted_types_must_be_a_list(tmp_path: Path, Xy: Any) -> None:
    modelyard.save_model(_forest(Xy), tmp_path / "m", serialization_format="skops")
    with pytest.raises(ConfigError, match="skops_trusted_types"):
        modelyard.load_model(tmp_path / "m", model_config={"skops_trusted_types": TREE})


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("sklearn.linear_model._logistic.LogisticRegression", True),
        ("sklearn.tree._tree.Tree", True),  # checked after loading
        ("numpy.float64", True),
        ("builtins.eval", False),
        ("sklearn.preprocessing._data.normalize", False),  # a function
        ("numpy.testing._private.utils.runstring", False),  # a function that execs
        ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", False),
        ("sklearn.no_such_module.Thing", False),
        ("mypackage.Model", False),
    ],
)
def test_default_trust(name: str, safe: bool) -> None:
    assert is_safe_type(name) is safe


@pytest.mark.parametrize(
    "kind", ["GradientBoostingClassifier", "AdaBoostClassifier", "BaggingClassifier"]
)
def test_tree_ensembles_load_by_default(kind: str, tmp_path: Path, Xy: Any) -> None:
    import sklearn.ensemble

    X, y = Xy
    est = getattr(sklearn.ensemble, kind)(n_estimators=3, random_state=0).fit(X, y)
    modelyard.save_model(est, tmp_path / "m", serialization_format="skops")
    np.testing.assert_array_equal(modelyard.load_model(tmp_path / "m").predict(X), est.predict(X))


def test_trees_in_unvetted_ensembles_need_the_callers_trust(tmp_path: Path, Xy: Any) -> None:
    from sklearn.ensemble import IsolationForest

    X, _ = Xy
    est = IsolationForest(n_estimators=3, random_state=0).fit(X)
    modelyard.save_model(est, tmp_path / "m", serialization_format="skops")
    with pytest.raises(UntrustedTypes, match="Tree"):
        modelyard.load_model(tmp_path / "m")
    model = modelyard.load_model(tmp_path / "m", model_config={"skops_trusted_types": [TREE]})
    np.testing.assert_array_equal(model.predict(X), est.predict(X))


def _tampered(est: Any, node: int, **fields: int) -> Any:
    """The forest with one node of its first tree rewritten, as an attacker would ship it."""
    tree = est[-1].estimators_[0].tree_
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    for name, value in fields.items():
        nodes[name][node] = value
    state["nodes"] = nodes
    tree.__setstate__(state)
    return est


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"left_child": 10**6}, "node 0 points to children"),
        ({"right_child": 0}, "node 0 points to children"),  # a cycle: predict never ends
        ({"feature": 40}, "node 0 reads feature 40 of 4"),
        ({"feature": -5}, "node 0 reads feature -5 of 4"),
    ],
)
def test_malformed_trees_are_refused(
    fields: dict[str, int], message: str, tmp_path: Path, Xy: Any
) -> None:
    est = _tampered(_forest(Xy), 0, **fields)
    modelyard.save_model(est, tmp_path / "m", serialization_format="skops")
    with pytest.raises(CorruptModelFile, match=message) as info:
        modelyard.load_model(tmp_path / "m")
    assert TREE in str(info.value)


def test_forest_must_validate_its_trees_width(tmp_path: Path, Xy: Any) -> None:
    est = _forest(Xy)
    est[-1].n_features_in_ = 2  # the forest would accept 2 columns; its trees read 4
    modelyard.save_model(est, tmp_path / "m", serialization_format="skops")
    with pytest.raises(CorruptModelFile, match="ensemble validates 2"):
        modelyard.load_model(tmp_path / "m")


def test_trust_report_judges_skops_files_as_a_load_does(tmp_path: Path, Xy: Any) -> None:
    # what `modelyard info` and `modelyard trust scan` show for a skops file
    from sklearn.linear_model import LogisticRegression

    from modelyard.trust.report import scan_model

    X, y = Xy
    modelyard.save_model(
        LogisticRegression(max_iter=500).fit(X, y), tmp_path / "lr", serialization_format="skops"
    )
    modelyard.save_model(_forest(Xy), tmp_path / "rf", serialization_format="skops")
    modelyard.save_model(_user_function_pipeline(Xy), tmp_path / "fn", serialization_format="skops")
    (lr,) = scan_model(tmp_path / "lr")
    (rf,) = scan_model(tmp_path / "rf")
    (fn,) = scan_model(tmp_path / "fn")
    assert (lr.path, lr.format, lr.verdict) == ("model.skops", "skops", "ok")
    assert (rf.format, rf.verdict) == ("skops", "ok")
    assert "node by node" in rf.reason
    assert TREE in rf.globals
    assert (fn.format, fn.verdict) == ("skops", "refused")
    assert fn.outside == (f"{__name__}.double",)
