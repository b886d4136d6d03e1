"""The four runs whose numbers must never change (issue 17): configs, and how to read them.

``python -m tests._same_numbers`` (from the repository root) rewrites
``tests/fixtures/same_numbers.json``: do that only when a change is meant to change the
numbers, and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file

FIXTURE = Path(__file__).parent / "fixtures" / "same_numbers.json"
METRICS = ("acc1", "acc5", "loss", "compression", "params", "params_nz", "pre_acc1",
           "base_acc1", "macs", "macs_nz", "speedup")
COMMON = {
    "dataset": "digits", "model": "lenet", "seed": 3, "base_epochs": 2, "base_lr": 0.05,
    "epochs": 3, "batch_size": 64, "base_batch_size": 64, "device": "cpu",
    "speed_repeats": 0, "compression": 4.0,
}
RUNS = {
    "oneshot": {"strategy": "global_weight"},
    "iterative": {"strategy": "layer_grad", "prune_schedule": "iterative", "prune_rounds": 2,
                  "rewind": "weights"},
    "gradual": {"strategy": "global_weight", "prune_schedule": "gradual", "prune_rounds": 2},
    "channel": {"strategy": "global_l1_channel", "compression": 2.0},
}


def digest(tensors: dict) -> str:
    """sha256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(dtype=__import__("torch").uint8).numpy().tobytes()
                 if t.numel() else b"")
    return h.hexdigest()


def record(store: Path) -> dict[str, dict]:
    """Run the four configs into the sqlite store under ``store``; their numbers and digests."""
    from mlbench import load_pruned
    from mlbench.cli import main
    from mlbench.tracking import download_run_files

    uri = f"sqlite:///{store / 'mlflow.db'}"
    out = {}
    for name, extra in RUNS.items():
        argv = ["prune", "--tracking-uri", uri, "--checkpoint-every", "-1"]
        for key, value in {**COMMON, **extra}.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        assert main(argv) == 0, name
        run_id = _last_prune_run(uri)
        metrics = _metrics(uri, run_id)
        entry = {"metrics": {k: metrics[k] for k in METRICS},
                 "config_hash": _tag(uri, run_id, "mlbench.config_hash")}
        files = ("masks.safetensors",) if name != "channel" else ("weights.safetensors",)
        folder = download_run_files(run_id, files, uri)
        entry["digest"] = digest(load_file(str(folder / files[0])))
        entry["model_digest"] = digest(load_pruned(run_id, uri).state_dict())
        out[name] = entry
    return out


def _last_prune_run(uri: str) -> str:
    import mlflow

    runs = mlflow.MlflowClient(uri).search_runs(
        [e.experiment_id for e in mlflow.MlflowClient(uri).search_experiments()],
        "tags.`mlbench.stage` = 'prune'", order_by=["attributes.start_time DESC"],
        max_results=1)
    return runs[0].info.run_id


def _tag(uri: str, run_id: str, key: str) -> str:
    import mlflow

    return mlflow.MlflowClient(uri).get_run(run_id).data.tags[key]


def _metrics(uri: str, run_id: str) -> dict[str, float]:
    import mlflow

    return dict(mlflow.MlflowClient(uri).get_run(run_id).data.metrics)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        data = record(Path(tmp))
    FIXTURE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    json.dump(data, sys.stdout, indent=1)
