"""One real stack (API + worker processes) for the security tests, torn down with the package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.stack import BulkStack, bulk_env


@pytest.fixture(scope="package")
def bulk(tmp_path_factory: pytest.TempPathFactory, stack_env: dict[str, str]) -> Iterator[BulkStack]:
    logs = tmp_path_factory.mktemp("security-stack")
    env = bulk_env(stack_env, logs / "home", redis_db=5)
    with BulkStack(env, logs, tenants=("sec-alice", "sec-mallory")) as stack:
        yield stack
