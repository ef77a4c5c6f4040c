"""Isolated environments built with uv, and models running in them.

The old-scikit-learn tests build (once, then cached under
``~/.cache/modelyard/envs``) a real environment holding scikit-learn 1.5.2
while this one holds a newer release.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import modelyard
from modelyard.cli import main
from modelyard.errors import SchemaError, WorkerError
from modelyard.isolation.envs import EnvSpec, build_env, model_env_spec
from modelyard.isolation.isolated import IsolatedModel
from tests._old_sklearn import OLD_SKLEARN


def test_spec_from_model_files_drops_mlflow(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "requirements.txt").write_text(
        "mlflow==3.17.2\nscikit-learn==1.5.2\n# comment\ncloudpickle==3.1.1\n"
    )
    (tmp_path / "python_env.yaml").write_text(
        "python: 3.10.14\nbuild_dependencies: [pip]\n"
        "dependencies:\n  - -r requirements.txt\n  - numpy<2\n"
    )
    spec = model_env_spec(tmp_path)
    assert spec.python == "3.10"
    assert spec.requirements == ("scikit-learn==1.5.2", "cloudpickle==3.1.1", "numpy<2")


def test_key_depends_on_python_and_requirements_not_their_order() -> None:
    a = EnvSpec("3.11", ("a==1", "b==2"))
    assert a.key == EnvSpec("3.11", ("b==2", "a==1")).key
    assert a.key != EnvSpec("3.12", ("a==1", "b==2")).key
    assert a.key != EnvSpec("3.11", ("a==1", "b==3")).key


def test_concurrent_builds_of_one_environment_build_it_once(tmp_path: Path) -> None:
    code = (
        "import sys, json; from pathlib import Path; "
        "from modelyard.isolation.envs import EnvSpec, build_env; "
        "env = build_env(EnvSpec(sys.argv[1], ()), root=Path(sys.argv[2])); "
        "print(json.dumps({'built': env.built, 'path': str(env.path)}))"
    )
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, version, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
    assert sorted(r["built"] for r in results) == [False, True]
    assert results[0]["path"] == results[1]["path"]
    env = build_env(EnvSpec(version, ()), root=tmp_path)
    assert not env.built
    out = subprocess.run(
        [str(env.python), "-c", "import modelyard, pandas, pyarrow; print(modelyard.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(out.stdout.strip()).resolve() == Path(modelyard.__file__).resolve()


def test_a_failed_build_leaves_nothing_and_says_why(tmp_path: Path) -> None:
    spec = EnvSpec("3.11", ("modelyard-no-such-package-xyz==0.0.1",))
    with pytest.raises(modelyard.errors.EnvironmentBuildError, match="uv pip install") as err:
        build_env(spec, root=tmp_path)
    assert "modelyard-no-such-package-xyz" in err.value.log
    assert not (tmp_path / spec.key).exists()


def test_old_sklearn_model_scores_in_its_own_environment(old_sklearn_models: Path) -> None:
    import sklearn

    assert sklearn.__version__ != OLD_SKLEARN
    with IsolatedModel.start(old_sklearn_models / "estimator") as model:
        assert model.versions("scikit-learn")["scikit-learn"] == OLD_SKLEARN
        assert model.environment["ok"]
        iris = pd.read_csv(_iris_csv(old_sklearn_models)).drop(columns="id")
        got = model.predict(iris)
        np.testing.assert_array_equal(got, np.load(old_sklearn_models / "expected.npy"))
        with pytest.raises(SchemaError) as err:
            model.predict(iris.drop(columns="petal width (cm)"))
        assert "petal width (cm)" in str(err.value)
    report = modelyard.check_environment(old_sklearn_models / "estimator")
    assert [m.package for m in report.mismatches] == ["scikit-learn"]


def test_predict_env_uv_runs_the_model_there(old_sklearn_models: Path, tmp_path: Path) -> None:
    src = _iris_csv(old_sklearn_models)
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(
        main,
        [
            "predict",
            "-m",
            str(old_sklearn_models / "version"),
            "-i",
            str(src),
            "-o",
            str(out),
            "--env",
            "uv",
            "--keep-columns",
            "id",
            "--batch-size",
            "50",
        ],
    )
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out, dtype=str)
    assert len(got) == 150
    assert set(got["prediction"]) == {OLD_SKLEARN}
    local = modelyard.load_model(old_sklearn_models / "version", env="ignore")
    assert set(local.predict(pd.read_csv(src))) == {__import__("sklearn").__version__}


def test_model_errors_come_back_named(old_sklearn_models: Path) -> None:
    with IsolatedModel.start(old_sklearn_models / "version") as model:
        with pytest.raises(WorkerError, match="TypeError: len") as err:
            model.predict(np.float64(1.0))  # the function calls len() on its input
        assert err.value.remote_type == "TypeError"
        # the process is still alive and serves the next call
        assert list(model.predict(np.ones((2, 4)))) == [OLD_SKLEARN] * 2
        # a process killed between calls is replaced by the next call
        first = model._proc.pid
        model._proc.kill()
        model._proc.wait()
        assert list(model.predict(np.ones((2, 4)))) == [OLD_SKLEARN] * 2
        assert model._proc.pid != first
    with pytest.raises(WorkerError, match="the model process was closed"):
        model.predict(np.ones((2, 4)))


def test_a_process_dying_mid_call_fails_that_call_and_the_next_gets_a_new_one(
    old_sklearn_models: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with IsolatedModel.start(old_sklearn_models / "crash") as model:
        first = model._proc.pid
        with pytest.raises(WorkerError, match=r"model process stopped \(exit status 3\)") as err:
            model.predict(np.ones((2, 4)))
        # what it printed last is in the error, and was passed on to our stderr
        assert "crash model: going down" in err.value.log
        assert "crash model: going down" in capfd.readouterr().err
        with pytest.raises(WorkerError, match="exit status 3"):
            model.predict(np.ones((2, 4)))
        assert model._proc.pid != first


def test_env_create_prints_where(old_sklearn_models: Path) -> None:
    uri = str(old_sklearn_models / "estimator")
    res = CliRunner().invoke(main, ["env", "create", uri, "--json"])
    assert res.exit_code == 0, res.output
    info: dict[str, Any] = json.loads(res.stdout)
    assert info["built"] is False  # the fixture built it already
    assert Path(info["python"]).is_file()
    assert f"scikit-learn=={OLD_SKLEARN}" in info["requirements"]
    plain = CliRunner().invoke(main, ["env", "create", uri])
    assert plain.exit_code == 0
    assert info["path"] in plain.stdout


def _iris_csv(folder: Path) -> Path:
    path = folder / "iris.csv"
    if not path.exists():
        from sklearn.datasets import load_iris

        X = load_iris(as_frame=True).data
        X.insert(0, "id", range(len(X)))
        X.to_csv(path, index=False)
    return path
