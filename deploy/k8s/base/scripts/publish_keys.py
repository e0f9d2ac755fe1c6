"""Publish the gateway's token key pair as two Secrets, once: the gateway-keys Job runs it after
`linli-gateway init-keys` has written a fresh pair into the Job's scratch folder.

    python publish_keys.py PRIVATE_PEM PUBLIC_PEM

Creates Secret `linli-jwt-private` (key `jwt_private.pem`, mounted by the gateway alone) and
`linli-jwt-public` (key `jwt_public.pem`, mounted by every process), in the pod's namespace, through
the Kubernetes API with the pod's service account. An existing private key is kept, never replaced:
a new one would invalidate every token in flight. A public key missing beside it is derived from it.
`KUBERNETES_API` (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT) and
`SERVICE_ACCOUNT_DIR` (default /var/run/secrets/kubernetes.io/serviceaccount) say where to go.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import serialization

PRIVATE, PUBLIC = "linli-jwt-private", "linli-jwt-public"
PRIVATE_KEY, PUBLIC_KEY = "jwt_private.pem", "jwt_public.pem"
LABELS = {"app.kubernetes.io/part-of": "linli", "app.kubernetes.io/component": "token-keys"}


class Api:
    def __init__(self, base: str, account: Path) -> None:
        self.base = base.rstrip("/")
        self.token = (account / "token").read_text().strip()
        self.namespace = (account / "namespace").read_text().strip()
        ca = account / "ca.crt"
        self.context = ssl.create_default_context(cafile=str(ca)) if ca.exists() else None

    def call(self, method: str, name: str | None = None, body: dict | None = None) -> tuple[int, dict]:
        url = f"{self.base}/api/v1/namespaces/{self.namespace}/secrets" + (f"/{name}" if name else "")
        request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            if error.code in (404, 409):
                return error.code, {}
            raise SystemExit(f"publish_keys: {method} {url} answered {error.code}: {error.read()[:300]!r}") from error

    def create(self, name: str, key: str, value: bytes) -> int:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "labels": LABELS},
            "data": {key: base64.b64encode(value).decode()},
        }
        return self.call("POST", body=body)[0]


def public_of(private_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def publish(api: Api, private_pem: bytes) -> str:
    """Create the pair from `private_pem` unless a private key is there already; say what was done."""
    status, existing = api.call("GET", PRIVATE)
    if status == 404 and api.create(PRIVATE, PRIVATE_KEY, private_pem) == 201:
        made = "created"
    else:  # there already, or made meanwhile by another run: the one in the cluster counts
        status, existing = api.call("GET", PRIVATE)
        private_pem = base64.b64decode(existing["data"][PRIVATE_KEY])
        made = "kept"
    public_pem = public_of(private_pem)
    status, current = api.call("GET", PUBLIC)
    if status == 404:
        api.create(PUBLIC, PUBLIC_KEY, public_pem)
    elif base64.b64decode(current.get("data", {}).get(PUBLIC_KEY, "")) != public_pem:
        current["data"] = {PUBLIC_KEY: base64.b64encode(public_pem).decode()}
        api.call("PUT", PUBLIC, current)
        return f"{made} {PRIVATE}; {PUBLIC} replaced: it did not match the private key"
    return f"{made} {PRIVATE} and its {PUBLIC}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    private_pem = Path(args[0]).read_bytes()
    if public_of(private_pem) != Path(args[1]).read_bytes():
        print("publish_keys: the two files are not one key pair", file=sys.stderr)
        return 2
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST", ""), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    base = os.environ.get("KUBERNETES_API") or f"https://{host}:{port}"
    account = Path(os.environ.get("SERVICE_ACCOUNT_DIR", "/var/run/secrets/kubernetes.io/serviceaccount"))
    print(f"publish_keys: {publish(Api(base, account), private_pem)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
