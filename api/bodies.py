"""Reading the bodies of POST /v1/jobs and POST /v1/batches: a multipart upload (a document or an
archive in `file`, job options as JSON in `options`) or a JSON document, each bounded by its
limit (api/body_limit.py refuses a declared length over it before this code runs), and the
OpenAPI description of such a two-way body."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from api.schemas import JobOptions
from api.submission import parse_options
from api.uploads import read_multipart as read_upload
from tessera.errors import InvalidInput, PayloadTooLarge

ModelT = TypeVar("ModelT", bound=BaseModel)


async def read_multipart(request: Request, limit: int
                         ) -> tuple[dict[str, str], bytes, str | None, JobOptions]:
    """(the form's other fields, the `file` part's bytes, its decoded file name, the parsed
    `options` field); api/uploads.py parses the body and decodes the name."""
    upload = await read_upload(request, limit)
    return upload.fields, upload.data, upload.filename, parse_options(upload.fields.get("options"))


async def read_json(request: Request, limit: int, model: type[ModelT], what: str) -> ModelT:
    """The JSON body validated as `model`; 413 past `limit`, 422 with the first errors."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLarge(f"the JSON body is larger than the {limit // 1024} KiB limit")
    try:
        return model.model_validate_json(bytes(raw))
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidInput(f"invalid {what}: {details}"[:1000]) from exc


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its `$defs` inlined (the OpenAPI document cannot see them)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {key: walk(value) for key, value in node.items()}
        return [walk(item) for item in node] if isinstance(node, list) else node

    return walk(schema)


def openapi_body(multipart_properties: dict[str, Any], json_model: type[BaseModel],
                 title: str | None = None) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself: multipart with a required `file`
    (and the given other fields; `title` names the form's schema, which client generators turn
    into a model name), or JSON shaped like `json_model`."""
    form = {"type": "object", "required": ["file"], "properties": multipart_properties}
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"title": title, **form} if title else form},
        "application/json": {"schema": inline_refs(json_model.model_json_schema())},
    }}}
