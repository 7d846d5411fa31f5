"""infra/k8s as the cluster sees it, for the manifest tests (tests/unit/test_k8s_manifests.py) and
the queue-depth tests against a real Redis (tests/integration/test_queue_depth.py).

`kubectl kustomize` renders the manifests (kubectl's built-in kustomize: the one `kubectl
apply -k` uses). KEDA's queue-depth query is reproduced with KEDA's own Lua script, sent with the
same EVAL command its redis scaler sends, one per trigger, summed by the ScaledObject's formula.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "infra" / "k8s"

# KEDA v2.20.2, pkg/scalers/redis_scaler.go (NewRedisScaler), verbatim: the whole query a `redis`
# trigger makes, `EVAL <script> 1 <listName>` on every poll. A hash counts its fields (HLEN).
KEDA_REDIS_SCRIPT = """
		local listName = KEYS[1]
		local listType = redis.call('type', listName).ok
		if listType == 'zset' then
			return redis.call('zcard', listName)
		elseif listType == 'set' then
			return redis.call('scard', listName)
		elseif listType == 'hash' then
			return redis.call('hlen', listName)
		elseif listType == 'list' or listType == 'none' then
			return redis.call('llen', listName)
		else
			return redis.error_reply('ERR unsupported key type: ' .. listType)
		end
	"""

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_SUM = re.compile(rf"\s*{_NAME}(\s*\+\s*{_NAME})*\s*")


def kustomize(folder: Path = K8S_DIR) -> list[dict[str, Any]]:
    """The objects `kubectl apply -k folder` would send. Fails the test without kubectl."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed; its built-in kustomize renders infra/k8s: "
                    "apt-get install --no-install-recommends kubernetes-client")
    result = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"kubectl kustomize {folder} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{len(matches)} {kind} named {name}"
    return matches[0]


def formula_terms(formula: str) -> list[str]:
    """The trigger names a formula adds up, e.g. "a + b" -> ["a", "b"]; ValueError for any other
    formula (the queue depth is a plain sum of its keys' lengths)."""
    if not _SUM.fullmatch(formula):
        raise ValueError(f"not a sum of trigger names: {formula!r}")
    return [term.strip() for term in formula.split("+")]


def scaled_objects() -> dict[str, dict[str, Any]]:
    """infra/k8s/scaledobjects.yaml by the name of the Deployment each one scales."""
    return {so["spec"]["scaleTargetRef"]["name"]: so
            for so in load_docs(K8S_DIR / "scaledobjects.yaml")}


def keda_queue_depth(client: Any, scaled_object: dict[str, Any]) -> int:
    """The metric KEDA gives the HPA for this ScaledObject: its Lua script per trigger, on a
    redis.Redis `client` connected to the trigger's database, summed by the formula."""
    triggers = {t["name"]: t["metadata"]["listName"] for t in scaled_object["spec"]["triggers"]}
    terms = formula_terms(scaled_object["spec"]["advanced"]["scalingModifiers"]["formula"])
    return sum(int(client.eval(KEDA_REDIS_SCRIPT, 1, triggers[term])) for term in terms)


def prestop_command(path: Path, deployment: str) -> list[str]:
    """The exec preStop command of a Deployment's only container."""
    (container,) = find(load_docs(path), "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return container["lifecycle"]["preStop"]["exec"]["command"]
