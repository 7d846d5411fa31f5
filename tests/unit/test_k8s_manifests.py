"""infra/k8s as a cluster would take it, checked offline.

- Every object validates against the Kubernetes schemas (kubernetes-validate, strict: an unknown
  field fails) for the oldest and newest Kubernetes KEDA 2.20 is tested on, and each ScaledObject
  against KEDA's own CRD schema (tests/data/keda/, with unknown fields refused, as the API server
  would silently prune them) plus the rules KEDA's admission webhook adds.
- `kubectl kustomize` output is consistent: labels, selectors, names and references.
- The autoscaling keeps its reasons: the ScaledObjects count exactly kombu's Redis keys for their
  Deployment's queues, grace periods and the gpu cooldown sit above the task time limit, and the
  cpu and gpu workers agree on the pages per message the targets are sized for.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kombu.transport.redis import PRIORITY_STEPS, Channel

from tessera.config import Settings
from tests.utils.k8s import K8S_DIR, ROOT, find, formula_terms, kustomize, load_docs
from workers.celery_app import QUEUES, unacked_keys

# KEDA 2.20 is tested on Kubernetes 1.33 - 1.35 (keda-docs, operate/cluster.md).
KUBERNETES_VERSIONS = ("1.33.0", "1.35.0")
KEDA_CRD = ROOT / "tests" / "data" / "keda" / "keda.sh_scaledobjects.yaml"
# KEDA 2.20 docs, scalers/redis-lists.md: every parameter a `redis` trigger's metadata may hold.
REDIS_TRIGGER_PARAMETERS = {
    "address", "host", "port", "addressFromEnv", "hostFromEnv", "portFromEnv", "usernameFromEnv",
    "passwordFromEnv", "listName", "listLength", "activationListLength", "enableTLS", "unsafeSsl",
    "databaseIndex",
}
WORKERS = ("tessera-cpu-worker", "tessera-gpu-worker")


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return kustomize()


@pytest.fixture(scope="module")
def config(rendered: list[dict[str, Any]]) -> dict[str, str]:
    return find(rendered, "ConfigMap", "tessera-config")["data"]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict[str, Any], config: dict[str, str]) -> dict[str, str]:
    """The container's environment: the ConfigMap (envFrom), overridden by its own `env`."""
    return {**config, **{e["name"]: e["value"] for e in container.get("env", [])}}


def _queues(deployment: dict[str, Any]) -> list[str]:
    args = _container(deployment)["args"]
    return args[args.index("--queues") + 1].split(",")


# ------------------------------------------------------------------ schemas


def test_every_manifest_is_in_the_kustomization_and_rendered(rendered: list[dict[str, Any]]) -> None:
    resources = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())["resources"]
    files = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(resources) == files, "every manifest file is applied by `kubectl apply -k`"
    written = {(d["kind"], d["metadata"]["name"]) for f in files for d in load_docs(K8S_DIR / f)}
    assert {(d["kind"], d["metadata"]["name"]) for d in rendered} == written
    assert len(rendered) == len(written), "no two objects share a kind and a name"


def test_kubernetes_objects_validate_against_the_kubernetes_schemas(rendered: list[dict[str, Any]]) -> None:
    builtin = [d for d in rendered if d["kind"] != "ScaledObject"]
    assert {d["kind"] for d in builtin} >= {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    for version in KUBERNETES_VERSIONS:
        for doc in builtin:
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_kubernetes_validator_refuses_an_unknown_field(rendered: list[dict[str, Any]]) -> None:
    deployment = copy.deepcopy(find(rendered, "Deployment", "tessera-gpu-worker"))
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 1920  # not the field's name
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def _refuse_unknown_fields(schema: Any) -> Any:
    """The CRD schema with additionalProperties false wherever it lists properties: the API
    server prunes fields a structural schema does not know, so a misspelt field would vanish
    without an error; here it fails."""
    if isinstance(schema, dict):
        schema = {k: _refuse_unknown_fields(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_refuse_unknown_fields(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def keda_validator() -> jsonschema.Draft202012Validator:
    (crd,) = load_docs(KEDA_CRD)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return jsonschema.Draft202012Validator(_refuse_unknown_fields(version["schema"]["openAPIV3Schema"]))


def keda_problems(so: dict[str, Any], validator: jsonschema.Draft202012Validator) -> Iterator[str]:
    """What KEDA 2.20 would refuse or warn about: the CRD schema, its CEL rule, and the admission
    webhook's checks (apis/keda/v1alpha1/scaledobject_webhook.go), plus the redis trigger's
    documented parameters."""
    for error in validator.iter_errors(so):
        yield f"schema: {'/'.join(map(str, error.absolute_path))}: {error.message}"
    spec = so["spec"]
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if low > high:
        yield "minReplicaCount must be less than or equal to maxReplicaCount"
    if low > 0 and ("cooldownPeriod" in spec or "pollingInterval" in spec):
        yield "cooldownPeriod/pollingInterval only matter with minReplicaCount 0 (KEDA warns)"
    names = [t.get("name") for t in spec["triggers"]]
    if None in names or len(set(names)) != len(names):
        yield f"triggers need unique names for the formula: {names}"
    modifiers = spec.get("advanced", {}).get("scalingModifiers", {})
    try:
        if sorted(formula_terms(modifiers.get("formula", ""))) != sorted(names):
            yield f"the formula must add every trigger once: {modifiers.get('formula')!r}"
    except ValueError as exc:
        yield str(exc)
    if not float(modifiers.get("target", "0")) > 0 or modifiers.get("metricType") != "AverageValue":
        yield "scalingModifiers: target > 0, metricType AverageValue (messages per pod)"
    for trigger in spec["triggers"]:
        meta = trigger["metadata"]
        if trigger["type"] != "redis" or not set(meta) <= REDIS_TRIGGER_PARAMETERS:
            yield f"{trigger['name']}: a redis trigger with its documented parameters: {sorted(meta)}"
        elif not meta.get("listName") or not meta.get("listLength", "").isdigit():
            yield f"{trigger['name']}: listName and a whole listLength are required"


def test_scaled_objects_have_kedas_documented_shape(keda_validator: jsonschema.Draft202012Validator) -> None:
    scaled = load_docs(K8S_DIR / "scaledobjects.yaml")
    assert sorted(so["spec"]["scaleTargetRef"]["name"] for so in scaled) == sorted(WORKERS)
    for so in scaled:
        assert so["apiVersion"] == "keda.sh/v1alpha1"
        assert list(keda_problems(so, keda_validator)) == [], so["metadata"]["name"]


@pytest.mark.parametrize("mistake", ["misspelt field", "trigger left out of the formula",
                                     "unknown trigger parameter", "min above max"])
def test_the_keda_checks_catch_mistakes(mistake: str, keda_validator: jsonschema.Draft202012Validator) -> None:
    so = copy.deepcopy(load_docs(K8S_DIR / "scaledobjects.yaml")[0])
    spec = so["spec"]
    if mistake == "misspelt field":
        spec["coolDownPeriod"] = spec.pop("cooldownPeriod")
    elif mistake == "trigger left out of the formula":
        modifiers = spec["advanced"]["scalingModifiers"]
        modifiers["formula"] = modifiers["formula"].rsplit("+", 1)[0]
    elif mistake == "unknown trigger parameter":
        spec["triggers"][0]["metadata"]["listname"] = "gpu"
    else:
        spec["minReplicaCount"] = spec["maxReplicaCount"] + 1
    assert list(keda_problems(so, keda_validator)), mistake


# ------------------------------------------------------------------ consistency


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_kustomize_output_labels_selectors_and_references(rendered: list[dict[str, Any]]) -> None:
    names = {(d["kind"], d["metadata"]["name"]) for d in rendered}
    deployments = [d for d in rendered if d["kind"] == "Deployment"]
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deployments}
    for doc in rendered:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "tessera", doc["metadata"]["name"]
    for deployment in deployments:
        name, labels = deployment["metadata"]["name"], pods[deployment["metadata"]["name"]]
        assert _selects(deployment["spec"]["selector"]["matchLabels"], labels), name
        assert deployment["metadata"]["labels"]["app.kubernetes.io/component"] == labels["app.kubernetes.io/component"]
        # a selector that matched another Deployment's pods would make them fight over them
        others = [n for n, other in pods.items() if n != name and _selects(deployment["spec"]["selector"]["matchLabels"], other)]
        assert others == [], f"{name} selects the pods of {others}"
        pod = deployment["spec"]["template"]["spec"]
        for source in _container(deployment).get("envFrom", []):
            ref = source.get("configMapRef") or source["secretRef"]
            assert (("ConfigMap" if "configMapRef" in source else "Secret"), ref["name"]) in names
        for volume in pod.get("volumes", []):
            assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in names
        assert ":" in _container(deployment)["image"], f"{name}: a tagged image"
    service, pdb = find(rendered, "Service", "tessera-api"), find(rendered, "PodDisruptionBudget", "tessera-api")
    for selector in (service["spec"]["selector"], pdb["spec"]["selector"]["matchLabels"]):
        assert [n for n, labels in pods.items() if _selects(selector, labels)] == ["tessera-api"]


def test_each_scaled_deployment_has_one_autoscaler_and_no_replicas(rendered: list[dict[str, Any]]) -> None:
    targets = [d["spec"]["scaleTargetRef"]["name"] for d in rendered
               if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")]
    assert sorted(targets) == sorted(["tessera-api", *WORKERS]), "one autoscaler per Deployment"
    for name in targets:
        # `replicas` in the manifest would reset the autoscaler's count on every apply
        assert "replicas" not in find(rendered, "Deployment", name)["spec"], name



def test_every_queue_has_a_worker(rendered: list[dict[str, Any]]) -> None:
    """A queue no Deployment consumes only grows (Redis runs with noeviction)."""
    consumed = {queue for d in rendered if d["kind"] == "Deployment"
                and _container(d)["args"][0] == "worker" for queue in _queues(d)}
    assert consumed == set(QUEUES), consumed

def test_scaled_objects_count_kombus_keys_for_their_deployments_queues(
    rendered: list[dict[str, Any]], config: dict[str, str]
) -> None:
    """Every list kombu 5.7 keeps for the Deployment's queues (one per priority step: the queue's
    name for step 0, "<queue><sep><step>" above it; kombu/transport/redis.py `_q_for_pri`) and
    the unacked hash of the worker's role, each exactly once."""
    broker = urlsplit(config["TESSERA_BROKER_URL"])
    assert config["KEDA_REDIS_ADDRESS"] == f"{broker.hostname}:{broker.port}"
    for so in (d for d in rendered if d["kind"] == "ScaledObject"):
        queues = _queues(find(rendered, "Deployment", so["spec"]["scaleTargetRef"]["name"]))
        expected = [q if step == 0 else f"{q}{Channel.sep}{step}" for q in queues for step in PRIORITY_STEPS]
        expected.append(unacked_keys(queues)["unacked_key"])
        triggers = [t["metadata"] for t in so["spec"]["triggers"]]
        assert sorted(t["listName"] for t in triggers) == sorted(expected)
        for meta in triggers:
            assert meta["addressFromEnv"] in config and meta["databaseIndex"] == broker.path.strip("/")


def test_workers_finish_their_task_before_they_go(rendered: list[dict[str, Any]], config: dict[str, str]) -> None:
    limit = Settings(task_time_limit_s=config["TESSERA_TASK_TIME_LIMIT_S"]).task_time_limit_s
    for name in WORKERS:
        deployment = find(rendered, "Deployment", name)
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > limit, name
        assert "kill -TERM" in " ".join(_container(deployment)["lifecycle"]["preStop"]["exec"]["command"])
        assert "REMAP_SIGTERM" not in _env(_container(deployment), config), "SIGTERM must stay warm"
    gpu = find(rendered, "ScaledObject", "tessera-gpu-worker")["spec"]
    assert gpu["cooldownPeriod"] > limit and gpu["minReplicaCount"] == 0
    assert find(rendered, "ScaledObject", "tessera-cpu-worker")["spec"]["minReplicaCount"] >= 1


def test_gpu_pods_request_one_gpu_and_the_workers_agree_on_message_size(
    rendered: list[dict[str, Any]], config: dict[str, str]
) -> None:
    gpu = _container(find(rendered, "Deployment", "tessera-gpu-worker"))
    resources = gpu["resources"]
    assert str(resources["requests"]["nvidia.com/gpu"]) == str(resources["limits"]["nvidia.com/gpu"]) == "1"
    args = gpu["args"]
    assert _queues(find(rendered, "Deployment", "tessera-gpu-worker")) == ["gpu"]
    assert args[args.index("--concurrency") + 1] == "1", "one process per GPU"
    cpu = _container(find(rendered, "Deployment", "tessera-cpu-worker"))
    # the cpu worker cuts documents into messages, the gpu worker batches: the targets assume both
    sizes = {_env(c, config).get("TESSERA_ENGINE_BATCH_SIZE") for c in (cpu, gpu)}
    assert sizes == {"96"}, sizes


def test_api_scales_on_cpu_and_keeps_one_pod_through_a_drain(rendered: list[dict[str, Any]]) -> None:
    hpa = find(rendered, "HorizontalPodAutoscaler", "tessera-api")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "tessera-api"}
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu" and 0 < metric["resource"]["target"]["averageUtilization"] < 100
    pdb = find(rendered, "PodDisruptionBudget", "tessera-api")["spec"]
    assert pdb["maxUnavailable"] < hpa["minReplicas"] <= hpa["maxReplicas"]
    api = _container(find(rendered, "Deployment", "tessera-api"))
    assert api["resources"]["requests"]["cpu"], "CPU utilization is a share of the request"


def test_the_models_claim_can_be_mounted_on_several_gpu_nodes(rendered: list[dict[str, Any]]) -> None:
    claim = find(rendered, "PersistentVolumeClaim", "tessera-models")["spec"]
    assert set(claim["accessModes"]) & {"ReadWriteMany", "ReadOnlyMany"}


def test_every_manifest_file_parses_alone() -> None:
    """Each file loads on its own too (`kubectl apply -f FILE`)."""
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in load_docs(path):
            assert {"apiVersion", "kind"} <= doc.keys(), path.name
            if doc["kind"] != "Kustomization":
                assert doc["metadata"]["name"], path.name


def test_kustomize_test_helper_reports_a_broken_kustomization(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(AssertionError, match="kubectl kustomize"):
        kustomize(tmp_path)
