"""One OpenAPI document for the whole platform, and an interactive page to try it.

Each service publishes its own document; the gateway fetches them, puts their paths under the
public prefix (`/api/v1/<service>`; Open311 paths stay where they are), prefixes their schema names
to keep them apart, and merges them with its own. A service that is down is left out and named.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests
import swagger_ui_bundle
from flask import Blueprint, Response, current_app, jsonify, send_from_directory

blp = Blueprint("openapi", __name__)
_CACHE_SECONDS = 60.0
_cache: dict[str, tuple[float, dict[str, Any]]] = {}

DOCS_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Linli API</title>
<link rel="stylesheet" href="/api/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true});</script>
</body></html>"""


def _service_document(name: str, base_url: str) -> dict[str, Any] | None:
    cached = _cache.get(name)
    if cached and time.monotonic() - cached[0] < _CACHE_SECONDS:
        return cached[1]
    try:
        response = requests.get(f"{base_url}/openapi.json", timeout=3)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError):
        return None
    _cache[name] = (time.monotonic(), document)
    return document


def _prefixed(name: str, document: dict[str, Any]) -> dict[str, Any]:
    prefix = name.capitalize()
    schemas = document.get("components", {}).get("schemas", {})
    text = json.dumps(document)
    for schema in sorted(schemas, key=len, reverse=True):
        text = text.replace(f'"#/components/schemas/{schema}"', f'"#/components/schemas/{prefix}{schema}"')
    renamed = json.loads(text)
    renamed_schemas = {f"{prefix}{k}": v for k, v in renamed.get("components", {}).get("schemas", {}).items()}
    paths = {}
    for path, item in renamed.get("paths", {}).items():
        public = path if path.startswith("/open311/") else f"/api/v1/{name}{path if path != '/' else '/'}"
        for operation in item.values():
            if isinstance(operation, dict):
                operation["tags"] = [f"{name}: {t}" for t in operation.get("tags", [])] or [name]
        paths[public] = item
    return {"paths": paths, "schemas": renamed_schemas}


def merged_document() -> dict[str, Any]:
    document = json.loads(json.dumps(current_app.extensions["linli.api"].spec.to_dict()))
    document["info"] = {
        "title": "Linli API",
        "version": "v1",
        "description": "Neighbourhood self-governance: issues, meetings, activities, notifications.",
    }
    missing = []
    for name, url in current_app.extensions["linli.gateway_settings"].service_urls.items():
        service_document = _service_document(name, url)
        if service_document is None:
            missing.append(name)
            continue
        part = _prefixed(name, service_document)
        document.setdefault("paths", {}).update(part["paths"])
        document.setdefault("components", {}).setdefault("schemas", {}).update(part["schemas"])
    if missing:
        document["info"]["x-missing-services"] = missing
    return document


@blp.get("/api/openapi.json")
def openapi_json() -> Response:
    return jsonify(merged_document())


@blp.get("/api/docs")
@blp.get("/api/docs/")
def docs() -> Response:
    return Response(DOCS_PAGE, content_type="text/html; charset=utf-8")


@blp.get("/api/docs/static/<path:filename>")
def docs_static(filename: str) -> Response:
    return send_from_directory(Path(swagger_ui_bundle.swagger_ui_path), filename)
