"""Request dependencies, as `Annotated` aliases the routes declare."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from storage.blobs import BlobStore
from storage.models import Tenant
from storage.tenants import tenant_for_key
from tessera.config import Settings
from tessera.errors import Unauthorized
from workers.enqueue import Enqueuer
from workers.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.runtime.sessions() as session:
        yield session


def get_tenant(request: Request, session: Annotated[Session, Depends(get_session)]) -> Tenant:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    tenant = tenant_for_key(session, key.strip())
    if tenant is None:
        raise Unauthorized("the API key is not valid")
    return tenant


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[Session, Depends(get_session)]
TenantDep = Annotated[Tenant, Depends(get_tenant)]


def get_settings_dep(runtime: RuntimeDep) -> Settings:
    return runtime.settings


def get_blobs(runtime: RuntimeDep) -> BlobStore:
    return runtime.blobs


def get_enqueuer(request: Request) -> Enqueuer:
    return request.app.state.enqueuer


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
EnqueuerDep = Annotated[Enqueuer, Depends(get_enqueuer)]
