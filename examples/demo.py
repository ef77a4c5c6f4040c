"""The main job, end to end: train a small model, save it, load it back, predict."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import modelyard as my


def main() -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    estimator = LogisticRegression(max_iter=1000).fit(X, y)

    workdir = Path(tempfile.mkdtemp(prefix="modelyard-demo-"))
    try:
        info = my.save_model(estimator, workdir / "iris", input_example=X.head(3))
        print(f"saved   {info.flavor} model to {info.path} ({info.digest[:19]}...)")

        model = my.load_model(info.path)
        print(f"loaded  {model!r}")
        predictions = model.predict(X.head(5))
        print(f"predict {predictions.tolist()} for the first 5 rows (truth {y.head(5).tolist()})")
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
