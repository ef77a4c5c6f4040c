"""The Python API, unchanged, against a real ``modelyard server``: log, register, alias, load."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import modelyard as my
from modelyard.errors import AliasNotFound, ModelVersionNotFound, RegisteredModelNotFound
from modelyard.yard import Yard


def test_log_register_alias_load_over_http(
    http_yard: Yard, iris_model: Any, iris: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, _ = iris
    assert http_yard.kind == "http"
    with my.start_run(experiment="iris") as run:
        my.log_params({"C": 1.0})
        my.log_metric("accuracy", 0.97, step=1)
        info = my.log_model(
            iris_model, "model", registered_model_name="iris", input_example=X.head()
        )
    assert info.registered_version is not None
    my.set_alias("iris", "champion", info.registered_version.version)
    model = my.load_model("models:/iris@champion")
    assert list(model.predict(X.head(5))) == list(iris_model.predict(X.head(5)))
    assert my.load_model(f"runs:/{run.run_id}/model").digest == info.digest
    history = my.get_alias_history("iris", "champion")
    assert [(c.from_version, c.to_version, c.changed_by) for c in history] == [(None, 1, "admin")]
    got = my.get_run(run.run_id)
    assert (got.params, got.metrics, got.status, got.created_by) == (
        {"C": "1.0"},
        {"accuracy": 0.97},
        "FINISHED",
        "admin",
    )


def test_errors_keep_their_types_and_context(http_yard: Yard, saved_iris: Any) -> None:
    my.register_model(saved_iris, "fraud")
    my.set_alias("fraud", "champion", 1)
    with pytest.raises(RegisteredModelNotFound) as missing:
        my.load_model("models:/frod/1")
    assert missing.value.suggestions == ("fraud",)
    with pytest.raises(AliasNotFound) as alias:
        my.load_model("models:/fraud@chmpion")
    assert alias.value.aliases == {"champion": 1}
    assert alias.value.suggestions == ("champion",)
    with pytest.raises(ModelVersionNotFound) as version:
        my.get_model_version("fraud", 9)
    assert version.value.versions == (1,)
