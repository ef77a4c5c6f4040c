"""The main job, end to end: train, log, register, set @champion, load by alias, predict.

Everything lands in an embedded yard in ./demo-yard (a SQLite database and a
blob folder; nothing to start). Run it again and a new version is registered
and @champion moves to it; `make clean` removes the yard.
"""

from __future__ import annotations

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import modelyard as my

DEMO_YARD = "demo-yard"


def main() -> None:
    yard = my.set_yard(DEMO_YARD)
    print(f"yard    {yard.uri} ({yard.kind})")
    X, y = load_iris(return_X_y=True, as_frame=True)

    with my.start_run(experiment="iris", run_name="logistic-regression") as run:
        estimator = LogisticRegression(max_iter=1000).fit(X, y)
        my.log_params({"max_iter": 1000})
        my.log_metric("accuracy", estimator.score(X, y))
        info = my.log_model(
            estimator, "model", registered_model_name="iris", input_example=X.head(3)
        )
    version = info.registered_version
    assert version is not None
    print(f"logged  {info.model_uri} ({info.digest[:19]}...)")
    print(f"registered iris v{version.version}")

    my.set_alias("iris", "champion", version.version)
    move = my.get_alias_history("iris", "champion")[-1]
    was = f" (was v{move.from_version})" if move.from_version else ""
    print(f"alias   models:/iris@champion -> v{version.version}{was}")

    model = my.load_model("models:/iris@champion")
    print(f"loaded  {model!r}")
    predictions = model.predict(X.head(5))
    print(f"predict {predictions.tolist()} for the first 5 rows (truth {y.head(5).tolist()})")
    print(f"run     {run.run_id}: accuracy {my.get_run(run.run_id).metrics['accuracy']:.3f}")


if __name__ == "__main__":
    main()
