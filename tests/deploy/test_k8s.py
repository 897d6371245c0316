"""deploy/k8s: every manifest validated offline against the Kubernetes schemas (kubernetes-validate
ships them), then checked for the rules the README promises (no cluster here)."""

from __future__ import annotations

import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from service import bulk
from tests.conftest import ENV
from training.cluster import indexed_job_hosts, tf_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES = "1.37.0"  # the newest schemas kubernetes-validate ships
KUSTOMIZATIONS = sorted(K8S.rglob("kustomization.yaml"))
MANIFESTS = sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def _docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _resource(kind: str, name: str) -> dict:
    found = [d for p in MANIFESTS for d in _docs(p) if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def _env(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(K8S)))
def test_k8s_manifest_matches_the_kubernetes_schema(path):
    for doc in _docs(path):
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)  # raises ValidationError naming the field


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S)))
def test_k8s_kustomization_lists_each_manifest_of_its_folder(path):
    kustomization = yaml.safe_load(path.read_text())
    assert kustomization["kind"] == "Kustomization"
    listed = {path.parent / name for name in kustomization["resources"]}
    assert listed == {p for p in path.parent.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert [image["name"] for image in kustomization["images"]] == ["microgan"]


def test_k8s_every_pod_runs_as_non_root_without_privilege_escalation():
    for path in MANIFESTS:
        for doc in _docs(path):
            if "template" not in doc.get("spec", {}):
                continue
            pod = _pod(doc)
            assert pod["securityContext"]["runAsNonRoot"] is True, path
            assert pod["securityContext"]["runAsUser"] == 10001, path  # the image's user
            for container in pod["containers"] + pod.get("initContainers", []):
                assert container["securityContext"]["allowPrivilegeEscalation"] is False, path
                assert container["image"] == "microgan" and "memory" in container["resources"]["limits"], path


def test_k8s_service_deployment_probes_gpu_secret_and_read_only_models():
    deployment = _resource("Deployment", "microgan")
    pod = _pod(deployment)
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    env = _env(container)
    assert ports["http"] == int(env["MICROGAN_PORT"])
    assert (
        container["resources"]["requests"]["nvidia.com/gpu"] == container["resources"]["limits"]["nvidia.com/gpu"] == 1
    )
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert env["MICROGAN_API_KEY"] == {"secretKeyRef": {"name": "microgan-admin", "key": "api-key"}}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == env["MICROGAN_MODELS_DIR"])
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert mount["readOnly"] is True and volume["persistentVolumeClaim"]["readOnly"] is True
    assert env["MICROGAN_MODELS_READ_ONLY"] == "true"
    _resource("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])

    service = _resource("Service", "microgan")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    hpa = _resource("HorizontalPodAutoscaler", "microgan")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "microgan"}
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def _bulk_args(job: dict, index: str) -> list[str]:
    (container,) = _pod(job)["containers"]
    assert container["command"] == ["python", "-m", "service.bulk"]
    return [arg.replace("$(JOB_COMPLETION_INDEX)", index) for arg in container["args"]]


def test_k8s_bulk_job_writes_shard_completion_index_of_a_set_sized_by_its_completions():
    job = _resource("Job", "microgan-bulk")
    spec, pod = job["spec"], _pod(job)
    (container,) = pod["containers"]
    assert spec["completionMode"] == "Indexed" and 1 <= spec["parallelism"] <= spec["completions"]
    assert "--shard-index=$(JOB_COMPLETION_INDEX)" in container["args"]
    index_env = _env(container)["JOB_COMPLETION_INDEX"]
    assert index_env == {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}
    # The arguments are the CLI's own: one shard per completion index, no index left over or missing.
    args = bulk._parser().parse_args(_bulk_args(job, "0"))
    bulk._check_arguments(args)
    assert spec["completions"] == math.ceil(args.count / args.shard_size)
    last = bulk._parser().parse_args(_bulk_args(job, str(spec["completions"] - 1)))
    assert list(bulk._selected(last, spec["completions"])) == [spec["completions"] - 1]
    beyond = bulk._parser().parse_args(_bulk_args(job, str(spec["completions"])))
    with pytest.raises(bulk.UsageError, match="outside"):
        bulk._selected(beyond, math.ceil(args.count / args.shard_size))
    assert args.version is not None  # every pod of one set draws from the same version
    # The same forward-pass size as the service, so the set's images are POST /generate's bytes.
    service_env = _env(_pod(_resource("Deployment", "microgan"))["containers"][0])
    assert _env(container)["MICROGAN_MAX_BATCH"] == service_env["MICROGAN_MAX_BATCH"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    models = next(m for m in container["volumeMounts"] if m["mountPath"] == _env(container)["MICROGAN_MODELS_DIR"])
    assert models["readOnly"] is True
    out = next(m for m in container["volumeMounts"] if args.out.startswith(m["mountPath"] + "/"))
    claim = next(v for v in pod["volumes"] if v["name"] == out["name"])["persistentVolumeClaim"]["claimName"]
    assert "ReadWriteMany" in _resource("PersistentVolumeClaim", claim)["spec"]["accessModes"]


def test_k8s_training_job_builds_tf_config_from_its_completion_index_with_the_tested_helper():
    job, service = _resource("Job", "microgan-train"), _resource("Service", "microgan-train")
    spec, pod = job["spec"], _pod(job)
    (container,) = pod["containers"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    assert pod["subdomain"] == service["metadata"]["name"] and service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": job["metadata"]["name"]}
    port = service["spec"]["ports"][0]["port"]
    assert {p["containerPort"] for p in container["ports"]} == {port}

    script = container["args"][0]
    assert container["command"] == ["sh", "-c"] and "set -e;" in script and "export TF_CONFIG;" in script
    (helper,) = re.findall(r'TF_CONFIG="\$\((python -m training tf-config [^)]*)\)"', script)
    argv = shlex.split(helper)[2:]  # training tf-config ...
    for index in range(spec["completions"]):
        result = _run_with_index(argv, index)
        hosts = indexed_job_hosts(job["metadata"]["name"], service["metadata"]["name"], spec["completions"], port)
        assert result == tf_config(hosts, index)
    # The chief writes the run directory on the shared volume, so a re-applied job resumes from it.
    run_dir = re.search(r"--run-dir (\S+)", script).group(1)
    runs = next(m for m in container["volumeMounts"] if run_dir.startswith(m["mountPath"] + "/"))
    claim = next(v for v in pod["volumes"] if v["name"] == runs["name"])["persistentVolumeClaim"]["claimName"]
    assert "ReadWriteMany" in _resource("PersistentVolumeClaim", claim)["spec"]["accessModes"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1


def _run_with_index(argv: list[str], index: int) -> str:
    """The helper as the pod runs it: its index from JOB_COMPLETION_INDEX (set by Kubernetes)."""
    result = subprocess.run(
        [sys.executable, "-m", *argv], capture_output=True, text=True, timeout=60,
        env={**ENV, "JOB_COMPLETION_INDEX": str(index)}, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
