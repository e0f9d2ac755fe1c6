"""Static files: versioned URLs, long cache lifetimes, gzip.

`asset_url("css/app.css")` gives `/static/css/app.css?v=<first 12 hex of the content's sha256>`. A
request carrying the current version is answered with a one-year immutable cache lifetime; any other
(an old page's, or none) with a short one, so a deploy is seen at once. Text files are gzipped once,
in memory, and sent compressed to browsers that accept it.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, abort, request

COMPRESSIBLE = (".js", ".css", ".svg", ".json", ".webmanifest", ".txt", ".map", ".html")
LONG = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"

mimetypes.add_type("application/manifest+json", ".webmanifest")
mimetypes.add_type("text/javascript", ".js")


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    version: str
    content_type: str


class Assets:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[str, Asset] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Asset | None:
        found = self._cache.get(name)
        if found is not None:
            return found
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        body = path.read_bytes()
        gzipped = None
        if path.suffix in COMPRESSIBLE and len(body) > 512:
            gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript", "application/json"):
            content_type += "; charset=utf-8"
        asset = Asset(body, gzipped, hashlib.sha256(body).hexdigest()[:12], content_type)
        with self._lock:
            self._cache[name] = asset
        return asset

    def url(self, name: str) -> str:
        asset = self.get(name)
        if asset is None:
            raise LookupError(f"no static file {name!r}")
        return f"/static/{name}?v={asset.version}"

    def response(self, name: str) -> Response:
        asset = self.get(name)
        if asset is None:
            abort(404)
        use_gzip = asset.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", "")
        response = Response(asset.gzipped if use_gzip else asset.body, content_type=asset.content_type)
        if use_gzip:
            response.headers["Content-Encoding"] = "gzip"
        if asset.gzipped is not None:
            response.vary.add("Accept-Encoding")
        response.headers["Cache-Control"] = LONG if request.args.get("v") == asset.version else SHORT
        response.set_etag(asset.version + ("-gz" if use_gzip else ""))
        return response.make_conditional(request)


def install(app: Flask) -> Assets:
    assets = Assets(Path(app.root_path) / "static")
    app.extensions["linli_web.assets"] = assets
    app.add_url_rule("/static/<path:name>", "static", assets.response)
    app.jinja_env.globals["asset_url"] = assets.url
    return assets
