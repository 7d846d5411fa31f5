"""The hostile-input suite's stack: real API and worker processes (digest engine) on the session's
PostgreSQL, Redis and S3, torn down with the package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.stack import BulkStack, bulk_env


@pytest.fixture(scope="package")
def hostile_stack(tmp_path_factory: pytest.TempPathFactory, stack_env: dict[str, str]) -> Iterator[BulkStack]:
    logs = tmp_path_factory.mktemp("hostile-stack")
    env = bulk_env(stack_env, logs / "home", redis_db=6)
    with BulkStack(env, logs, tenants=("hostile", "bystander")) as stack:
        yield stack
