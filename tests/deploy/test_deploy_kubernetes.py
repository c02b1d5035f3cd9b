"""The Kubernetes and KServe manifests under deploy/: valid against the Kubernetes schemas,
consistent with the service's real settings and routes, and run with ``podman kube play``.

The kustomizations are rendered with ``kubectl kustomize`` (skipped without kubectl); the
base's files and the KServe InferenceService are also validated as written.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from deploy_testlib import REPO, free_port, podman, shipped_models, wait_ready
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings

KUBERNETES = REPO / "deploy" / "kubernetes"
KSERVE = REPO / "deploy" / "kserve" / "inferenceservice.yaml"
BASE_DEPLOYMENT = KUBERNETES / "base" / "deployment.yaml"
# The oldest Kubernetes the manifests support (autoscaling/v2, policy/v1, seccompProfile are
# older) and the newest the validator knows.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
KUSTOMIZATIONS = ("base", "overlays/gpu")
# KServe v1beta1 PredictorSpec: an inline PodSpec plus these fields (its ComponentExtensionSpec)
KSERVE_COMPONENT_FIELDS = {
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "containerConcurrency",
    "timeout", "canaryTrafficPercent", "logger", "batcher", "labels", "annotations",
    "deploymentStrategy",
}  # fmt: skip
KSERVE_SCALE_METRICS = {"cpu", "memory", "concurrency", "rps"}


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def validate(resource: dict[str, Any]) -> None:
    """Strict validation (no unknown fields) against each Kubernetes version's schema."""
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(map(str, exc.path))
            name = f"{resource['kind']} {resource['metadata']['name']}"
            raise AssertionError(
                f"{name} at {where}: {exc.message} (Kubernetes {version})"
            ) from None


def kustomize(path: str) -> list[dict[str, Any]]:
    """``kubectl kustomize deploy/kubernetes/<path>``, parsed."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (kubectl kustomize renders the overlays)")
    out = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES / path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = [d["kind"] for d in docs]
    assert len(kinds) == len(set(kinds)), kinds
    return {d["kind"]: d for d in docs}


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def dockerfile_uid() -> int:
    users = re.findall(r"^USER\s+(\S+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    return int(users[-1].split(":")[0])


@pytest.fixture(scope="module")
def app_client() -> Iterator[TestClient]:
    """The service on the shipped models, to ask its real routes."""
    with TestClient(create_app(Settings(models_dir=REPO / "models"))) as client:
        yield client


def test_base_files_validate_as_written() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "base" / "kustomization.yaml").read_text())
    kinds = set()
    for name in kustomization["resources"]:
        for resource in load_all(KUBERNETES / "base" / name):
            validate(resource)
            kinds.add(resource["kind"])
    assert kinds == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_rendered_kustomization_validates(path: str) -> None:
    docs = kustomize(path)
    for resource in docs:
        validate(resource)
    assert set(by_kind(docs)) == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }


def test_validation_catches_a_bad_field() -> None:
    deployment = by_kind(load_all(BASE_DEPLOYMENT))["Deployment"]
    bad = copy.deepcopy(deployment)
    bad["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/x"
    with pytest.raises(AssertionError, match="paht"):
        validate(bad)


def test_kserve_inferenceservice_validates() -> None:
    (isvc,) = load_all(KSERVE)
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["kind"] == "InferenceService"
    predictor = dict(isvc["spec"]["predictor"])
    component = {k: predictor.pop(k) for k in list(predictor) if k in KSERVE_COMPONENT_FIELDS}
    assert component["scaleMetric"] in KSERVE_SCALE_METRICS
    assert 1 <= component["minReplicas"] <= component["maxReplicas"]
    # What remains is the predictor's pod: validated as a Pod.
    validate({"apiVersion": "v1", "kind": "Pod", "metadata": isvc["metadata"], "spec": predictor})
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"  # KServe's name for the predictor container


def workloads() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, pod spec, container) of every pod the manifests describe, as written."""
    deployment = by_kind(load_all(BASE_DEPLOYMENT))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (isvc,) = load_all(KSERVE)
    predictor = isvc["spec"]["predictor"]
    return [
        ("deployment", pod, pod["containers"][0]),
        ("inferenceservice", predictor, predictor["containers"][0]),
    ]


@pytest.mark.parametrize("name", ["deployment", "inferenceservice"])
def test_probes_ports_and_settings_match_the_service(name: str, app_client: TestClient) -> None:
    _, pod, container = next(w for w in workloads() if w[0] == name)
    env = env_of(container)
    # Every variable is a real setting, with a value the service accepts.
    fields = {f"GANSERVE_{field.upper()}": field for field in Settings.model_fields}
    unknown = set(env) - set(fields)
    assert not unknown, f"not settings of the service: {unknown}"
    settings = Settings(**{fields[k]: v for k, v in env.items()})
    assert settings.host == "0.0.0.0"
    assert settings.keepalive_timeout_s > 60
    (port,) = container["ports"]
    assert port["containerPort"] == settings.port
    ports = {port.get("name"): port["containerPort"], port["containerPort"]: port["containerPort"]}
    # Liveness and startup on /healthz, readiness on /readyz, at the port the server listens on.
    probes = {kind: container[f"{kind}Probe"]["httpGet"] for kind in ("startup", "liveness")}
    probes["readiness"] = container["readinessProbe"]["httpGet"]
    for kind, probe in probes.items():
        assert ports[probe["port"]] == settings.port, kind
        assert app_client.get(probe["path"]).status_code == 200, kind
    assert probes["liveness"]["path"] == probes["startup"]["path"] == "/healthz"
    assert probes["readiness"]["path"] == "/readyz"
    # The startup budget covers the image's own HEALTHCHECK start period (60 s).
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
    # Locked down as the container tests run the image.
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == dockerfile_uid()
    # Requests and limits; the ORT threads fit in the CPU limit.
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) & set(resources["limits"])
    assert settings.intra_op_threads and settings.intra_op_threads <= int(
        resources["limits"]["cpu"]
    )
    # The load balancer stops sending (preStop) before SIGTERM, and draining fits in the grace.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + 30


def test_service_hpa_and_pdb_select_the_deployment(app_client: TestClient) -> None:
    docs = by_kind([d for p in (KUBERNETES / "base").glob("*.yaml") for d in load_all(p)])
    deployment = docs["Deployment"]
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    container = template["spec"]["containers"][0]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = docs["Service"]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == container["ports"][0]["name"]
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["minReplicas"] > docs["PodDisruptionBudget"]["spec"]["minAvailable"]
    # Prometheus scrapes the real metrics route on the container's port.
    annotations = template["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == container["ports"][0]["containerPort"]
    metrics = app_client.get(annotations["prometheus.io/path"])
    assert metrics.status_code == 200 and "ganserve_requests" in metrics.text


def test_gpu_overlay_asks_for_a_gpu_and_cuda() -> None:
    base = by_kind(kustomize("base"))["Deployment"]["spec"]["template"]["spec"]
    gpu = by_kind(kustomize("overlays/gpu"))["Deployment"]["spec"]["template"]["spec"]
    (base_container,), (gpu_container,) = base["containers"], gpu["containers"]
    assert env_of(base_container)["GANSERVE_PROVIDER"] == "cpu"
    assert base_container["image"] == "ganserve:cpu"
    assert "nvidia.com/gpu" not in base_container["resources"]["limits"]
    assert env_of(gpu_container)["GANSERVE_PROVIDER"] == "cuda"
    assert gpu_container["image"] == "ganserve:gpu"
    assert gpu_container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert any(t["key"] == "nvidia.com/gpu" for t in gpu["tolerations"])
    # Everything else of the base is kept: probes, security, the other settings.
    for key in ("startupProbe", "livenessProbe", "readinessProbe", "securityContext", "lifecycle"):
        assert gpu_container[key] == base_container[key], key
    assert set(env_of(gpu_container)) == set(env_of(base_container))


@pytest.mark.container
def test_deployment_runs_under_podman_kube_play(cpu_image: str, tmp_path: Path) -> None:
    """The base Deployment, run by ``podman kube play``, answers as the image does.

    What podman cannot do is changed in the copy it runs, nothing else: the image is the
    test's build; podman publishes each containerPort on the host, so the port is a free one
    (GANSERVE_PORT with it) and there is one replica; podman turns the liveness probe into a
    curl health check (not in the image, and named ports unresolved), so the test asks the
    probe paths itself.
    """
    # Rendered by kustomize where kubectl is there, else the base's file as written.
    rendered = kustomize("base") if shutil.which("kubectl") else load_all(BASE_DEPLOYMENT)
    deployment = by_kind(rendered)["Deployment"]
    port = free_port()
    deployment["spec"]["replicas"] = 1
    deployment["metadata"]["name"] = name = f"ganserve-kube-{port}"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["image"] = cpu_image
    container["ports"][0]["containerPort"] = port
    for var in container["env"]:
        if var["name"] == "GANSERVE_PORT":
            var["value"] = str(port)
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(yaml.safe_dump(deployment))
    podman("kube", "play", str(manifest), timeout=180)
    try:
        url = f"http://127.0.0.1:{port}"
        ready = wait_ready(url)
        assert ready["models"] == shipped_models()
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        r = httpx.get(f"{url}/generate", params={"n": 4, "seed": 1}, timeout=60)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        (ctr,) = [
            c
            for c in podman("ps", "--format", "{{.Names}}").stdout.split()
            if c.startswith(name) and not c.endswith("-infra")
        ]
        status = podman("exec", ctr, "cat", "/proc/1/status").stdout
        assert re.search(r"^Uid:\s+10001\s", status, re.MULTILINE), status
        assert re.search(r"^CapEff:\s+0+$", status, re.MULTILINE), status
        assert re.search(r"^NoNewPrivs:\s+1$", status, re.MULTILINE), status
        readonly = podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", ctr).stdout
        assert readonly.strip() == "true"
    finally:
        podman("kube", "down", str(manifest), check=False, timeout=120)
