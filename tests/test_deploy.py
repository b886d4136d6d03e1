"""deploy/kubernetes: what `mlflow run --backend kubernetes` needs, checked with MLflow's own
code where it runs without a cluster (none is reachable here: the Job itself is untested)."""

from __future__ import annotations

import json
import re
import shlex

import pytest
import yaml
from mlflow.projects import _parse_kubernetes_config
from mlflow.projects.docker import validate_docker_env
from mlflow.projects.utils import load_project

from mlbench.cli import build_parser
from tests.conftest import REPO

DEPLOY = REPO / "deploy" / "kubernetes"
# The template fields MLflow overwrites (mlflow/projects/kubernetes.py) carry these values
# in MLflow's documented template.
PLACEHOLDERS = {
    "name": "{replaced with MLflow Project name}",
    "image": "{replaced with URI of Docker image created during Project execution}",
    "command": ["{replaced with MLflow Project entry point command}"],
}


@pytest.fixture
def kube_config(monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.chdir(REPO)  # `mlflow run` is started from the repository root
    config = json.loads((DEPLOY / "kubernetes_config.json").read_text())
    return _parse_kubernetes_config(config)


def test_mlflow_accepts_the_backend_config(kube_config):
    assert kube_config["repository-uri"]
    assert kube_config["kube-context"]
    assert kube_config["kube-job-template"]["kind"] == "Job"


def test_the_job_template_has_every_field_mlflow_fills_in(kube_config):
    job = kube_config["kube-job-template"]
    assert job["apiVersion"] == "batch/v1"
    assert job["metadata"]["name"] == PLACEHOLDERS["name"]
    assert job["metadata"]["namespace"]  # MLflow submits the Job to this namespace
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")  # a Job's pods must not restart
    container = pod["containers"][0]
    assert {k: container[k] for k in PLACEHOLDERS} == PLACEHOLDERS
    assert isinstance(container.get("env", []), list)  # MLflow appends its variables
    volumes = {v["name"] for v in pod.get("volumes", [])}
    assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes


def test_the_kubernetes_project_is_a_docker_project_mlflow_can_run():
    project = load_project(str(DEPLOY))
    validate_docker_env(project)  # the Kubernetes backend's own check
    assert project.name == "mlbench"
    root = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]
    assert set(project._entry_points) == {"main", "sweep"} <= set(root)


@pytest.mark.parametrize("entry_point", ["main", "sweep"])
def test_every_entry_point_command_parses_with_its_defaults(entry_point, tmp_path):
    project = load_project(str(DEPLOY))
    entry = project.get_entry_point(entry_point)
    command = entry.compute_command({}, str(tmp_path))
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "mlbench"]
    args = build_parser().parse_args(argv[3:])
    assert args.command == ("prune" if entry_point == "main" else "sweep")
    root = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"][entry_point]
    for name, spec in entry.parameters.items():  # the root project's defaults, but paths
        if name in root["parameters"] and name not in ("data_dir", "project"):
            assert str(spec.default) == str(root["parameters"][name]["default"]), name


def test_the_image_holds_the_presets_the_sweep_defaults_to():
    project = yaml.safe_load((DEPLOY / "MLproject").read_text())
    preset = project["entry_points"]["sweep"]["parameters"]["project"]["default"]
    assert preset.startswith("/opt/mlbench/") and (REPO / preset[len("/opt/mlbench/"):]).exists()
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "WORKDIR /opt/mlbench" in dockerfile
    for line in re.findall(r"^COPY (.+)$", dockerfile, flags=re.M):
        *sources, _ = line.split()
        assert all((REPO / s).exists() for s in sources), line


def test_the_sweep_job_runs_n_workers_on_one_queue_with_credentials_from_a_secret():
    job = yaml.safe_load((DEPLOY / "sweep_job.yaml").read_text())
    spec = job["spec"]
    assert job["kind"] == "Job" and spec["parallelism"] > 1 and "completions" not in spec
    (container,) = spec["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    for name in ("MLBENCH_STORAGE", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]
    text = (DEPLOY / "sweep_job.yaml").read_text()
    assert "postgresql://" not in text.replace("# postgresql://USER:PASSWORD@HOST/DB", "")
    # Kubernetes expands $(VAR) from the env; the command then parses as a sweep
    argv = [re.sub(r"\$\((\w+)\)", lambda m: {"MLBENCH_STORAGE": "postgresql://u:p@h/db"}.get(
        m.group(1), env[m.group(1)].get("value", "")), a) for a in container["command"]]
    assert argv[:3] == ["python", "-m", "mlbench"]
    args = build_parser().parse_args(argv[3:])
    assert args.command == "sweep" and args.storage == "postgresql://u:p@h/db"
    secret = yaml.safe_load((DEPLOY / "secret.example.yaml").read_text())
    assert secret["kind"] == "Secret"
    assert {e["valueFrom"]["secretKeyRef"]["key"] for e in env.values() if "valueFrom" in e} \
        == set(secret["stringData"])
