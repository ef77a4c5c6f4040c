"""Models saved by an older scikit-learn, in a uv environment that holds it.

The test process has a newer scikit-learn, so these show a model scored in its
own environment (``--env uv``) getting what it was trained with.
"""

from __future__ import annotations

from pathlib import Path

import pytest

OLD_SKLEARN = "1.5.2"
_SAVE_WITH_OLD_SKLEARN = """
import os
import sys
import numpy as np
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
import modelyard

out, requirements = sys.argv[1], sys.argv[2:]
X, y = load_iris(return_X_y=True, as_frame=True)
est = LogisticRegression(max_iter=1000).fit(X, y)
modelyard.save_model(est, out + "/estimator", input_example=X.head(3))
np.save(out + "/expected.npy", est.predict(X))


def which_sklearn(model_input):
    return np.array([sklearn.__version__] * len(model_input), dtype=object)


modelyard.save_model(which_sklearn, out + "/version", pip_requirements=requirements)


def crash(model_input):
    print("crash model: going down", file=sys.stderr, flush=True)
    os._exit(3)


modelyard.save_model(crash, out + "/crash", pip_requirements=requirements)
"""


@pytest.fixture(scope="session")
def old_sklearn_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models saved by scikit-learn 1.5.2, inside a uv environment that holds it.

    ``estimator/``: a LogisticRegression on iris, ``expected.npy``: its predictions
    there; ``version/``: a function model returning the scikit-learn version it runs with;
    ``crash/``: a function model whose process says so on stderr and exits when called.
    The environment is the one both models ask for, so scoring them reuses it.
    """
    import subprocess
    import sys

    import cloudpickle

    from modelyard.isolation.envs import EnvSpec, _clean_env, build_env

    v = sys.version_info
    requirements = (f"scikit-learn=={OLD_SKLEARN}", f"cloudpickle=={cloudpickle.__version__}")
    env = build_env(EnvSpec(f"{v.major}.{v.minor}", requirements))
    out = tmp_path_factory.mktemp("old-sklearn")
    script = out / "save.py"
    script.write_text(_SAVE_WITH_OLD_SKLEARN)
    subprocess.run(
        [str(env.python), str(script), str(out), *requirements],
        check=True,
        env=_clean_env(),
        timeout=600,
    )
    return out
