"""/v1/webhooks: the tenant's signing secret, to verify `Tessera-Signature` (workers/webhooks.py)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import SessionDep, TenantDep
from api.schemas import ErrorBody
from storage.webhooks import webhook_secret

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class WebhookSecretOut(BaseModel):
    secret: str
    header: str = "Tessera-Signature"
    scheme: str = "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, '<t>.<raw body>')>"


@router.get("/secret", response_model=WebhookSecretOut, responses={401: {"model": ErrorBody}})
def get_webhook_secret(session: SessionDep, tenant: TenantDep) -> WebhookSecretOut:
    """The key that signs this tenant's webhooks (made on first use; the same key afterwards)."""
    secret = webhook_secret(session, tenant.id)
    session.commit()
    return WebhookSecretOut(secret=secret)
