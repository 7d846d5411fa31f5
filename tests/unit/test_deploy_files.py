"""The deployment files stay loadable: docker-compose.yml (as Debian's docker-compose v1.29
reads it, the strictest parser we have without a Docker engine) and the Prometheus/Grafana
provisioning. The Kubernetes manifests have their own tests (test_k8s_manifests.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tessera.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

TESSERA_SERVICES = {"api", "migrate", "cpu-worker", "gpu-worker"}
EXPECTED_SERVICES = TESSERA_SERVICES | {
    "redis", "postgres", "minio", "minio-init", "flower", "prometheus", "grafana",
}
EXPECTED_ENV = {
    "TESSERA_DATABASE_URL": "postgresql://tessera:tessera@postgres:5432/tessera",
    "TESSERA_BROKER_URL": "redis://redis:6379/0",
    "TESSERA_S3_ENDPOINT_URL": "http://minio:9000",
    "TESSERA_S3_BUCKET": "tessera",
}


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose (v1) is not installed; it validates docker-compose.yml without a "
            "Docker engine: apt-get install --no-install-recommends docker-compose"
        )
    # Only the defaults written in the file: no operator overrides from the environment.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMPOSE_", "DOCKER_", "MINIO_", "TESSERA_", "GRAFANA_"))}
    return subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def compose() -> dict:
    """The configuration as docker-compose resolves it (anchors merged, variables filled)."""
    result = _compose("config")
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def _cmd(service: dict) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def test_compose_file_validates_with_docker_compose_v1():
    result = _compose("config", "-q")
    assert result.returncode == 0, f"docker-compose config -q rejected the file:\n{result.stderr}"


def test_compose_has_every_service(compose):
    assert EXPECTED_SERVICES <= set(compose["services"])


def test_tessera_services_share_environment_and_wait_for_migrate(compose):
    services = compose["services"]
    minio_env = services["minio"]["environment"]
    for name in TESSERA_SERVICES:
        env = services[name]["environment"]
        for key, value in EXPECTED_ENV.items():
            assert env.get(key) == value, f"{name}: {key}={env.get(key)!r}"
        assert env["AWS_ACCESS_KEY_ID"] == minio_env["MINIO_ROOT_USER"], name
        assert env["AWS_SECRET_ACCESS_KEY"] == minio_env["MINIO_ROOT_PASSWORD"], name
        assert env.get("AWS_DEFAULT_REGION"), name
    for name in TESSERA_SERVICES - {"migrate"}:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"].get("restart") == "no"


def test_tessera_commands(compose):
    services = compose["services"]
    api = " ".join(_cmd(services["api"]))
    assert "serve" in api and "--no-worker" in api and "0.0.0.0" in api and "8000" in api
    assert "migrate" in _cmd(services["migrate"])
    cpu, gpu = _cmd(services["cpu-worker"]), _cmd(services["gpu-worker"])
    assert cpu[cpu.index("--queues") + 1] == "cpu,webhooks" and cpu[cpu.index("--concurrency") + 1] == "2"
    assert gpu[gpu.index("--queues") + 1] == "gpu" and gpu[gpu.index("--concurrency") + 1] == "1"



def test_workers_agree_on_message_size_and_finish_their_task_when_stopped(compose):
    """The cpu worker cuts messages the size the gpu worker batches; `docker-compose stop`
    waits past the longest task (the hard limit) before it kills a worker."""
    services = compose["services"]
    cpu, gpu = services["cpu-worker"], services["gpu-worker"]
    assert cpu["environment"]["TESSERA_ENGINE_BATCH_SIZE"] == gpu["environment"]["TESSERA_ENGINE_BATCH_SIZE"]
    limit = int(gpu["environment"].get("TESSERA_TASK_TIME_LIMIT_S", Settings.model_fields["task_time_limit_s"].default))
    for worker in (cpu, gpu):
        grace = worker["stop_grace_period"]
        assert grace.endswith("s") and int(grace[:-1]) > limit, grace

def test_redis_keeps_queued_messages(compose):
    redis = compose["services"]["redis"]
    command = " ".join(_cmd(redis))
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert redis.get("volumes") and redis.get("healthcheck")


def test_postgres_and_minio(compose):
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["postgres"].get("volumes")
    init = services["minio-init"]
    assert init["image"].startswith("minio/mc")
    assert "local/tessera" in " ".join(_cmd(init))
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"


def test_gpu_worker_reserves_an_nvidia_gpu_and_mounts_models(compose):
    gpu = compose["services"]["gpu-worker"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        d.get("driver") == "nvidia" and d.get("count") == 1 and "gpu" in d.get("capabilities", [])
        for d in devices
    ), devices
    env = gpu["environment"]
    assert env["TESSERA_ENGINE"] == "internvl"
    assert env["TESSERA_MODEL_PATH"].startswith("/models/")
    assert any(str(v).split(":")[1] == "/models" for v in gpu["volumes"]), gpu["volumes"]
    assert gpu["build"]["dockerfile"] == "infra/Dockerfile.gpu"


def test_monitoring_config():
    prom = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
    targets = {
        (job.get("metrics_path", "/metrics"), target)
        for job in prom["scrape_configs"]
        for sc in job["static_configs"]
        for target in sc["targets"]
    }
    assert ("/metrics", "api:8000") in targets
    ds = yaml.safe_load(
        (ROOT / "infra/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert any(d["type"] == "prometheus" and d["url"] == "http://prometheus:9090"
               for d in ds["datasources"])


def test_gpu_dockerfile_keeps_the_base_image_torch():
    """The project goes in with --no-deps and no RUN step installs the extra (its torch pin
    would replace the image's CUDA build with a CPU wheel)."""
    text = (ROOT / "infra/Dockerfile.gpu").read_text().replace("\\\n", " ")
    runs = [line for line in text.splitlines() if line.startswith("RUN ")]
    assert any("pip install --no-deps ." in run for run in runs)
    assert not any("[internvl]" in run for run in runs)

