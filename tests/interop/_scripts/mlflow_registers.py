"""MLflow logs a model directory saved elsewhere, registers it, and downloads it by models:/ URI.

Usage: mlflow_registers.py MODEL_DIR OUT. Prints {"downloaded": path, "version": n} as JSON.
The download is where MLflow adds its ``registered_model_meta`` file.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import mlflow

warnings.filterwarnings("ignore")
model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
experiment = mlflow.create_experiment("ours", artifact_location=(out / "artifacts").as_uri())
with mlflow.start_run(experiment_id=experiment) as run:
    mlflow.log_artifacts(str(model_dir), artifact_path="model")
version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "ours")
downloaded = out / "downloaded"
downloaded.mkdir()
mlflow.artifacts.download_artifacts(f"models:/ours/{version.version}", dst_path=str(downloaded))
print(json.dumps({"downloaded": str(downloaded), "version": int(version.version)}))
