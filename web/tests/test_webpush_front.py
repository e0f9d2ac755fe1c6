"""Alerts without a native app: the "Turn on alerts" button on the notification preferences, the
route that registers a browser's Web Push subscription through the gateway, and the service worker
that shows a push (on the stand-in gateway)."""

from __future__ import annotations

import json
import re


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client) -> None:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"csrf_token": token, "phone": "13900000007", "password": "right-password"})


KEY = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
SUBSCRIPTION = {
    "endpoint": "https://fcm.googleapis.com/fcm/send/dpH5lCsTSSM:APA91bHq",
    "expirationTime": None,
    "keys": {"p256dh": "B" + "A" * 86, "auth": "tBHItJI5svbpez7KI4CCXg"},
}


def with_push(stub, *, key: str | None = KEY, devices_status: int = 201):
    """The stand-in gateway with the notifications service's Web Push answers."""
    plain = stub.route

    def route(method, path, raw, headers):
        if path == "/api/v1/notifications/push/vapid-public-key":
            if key is None:
                return stub._error(404, "not_found")
            return 200, {"public_key": key}, {}
        if path == "/api/v1/notifications/preferences":
            item = {"category": "activity", "channel": "push", "enabled": True, "default": True, "mandatory": False}
            return 200, {"quiet_hours": None, "timezone": "Asia/Shanghai", "items": [item]}, {}
        if path == "/api/v1/notifications/devices" and method == "POST":
            stub.devices.append(json.loads(raw))
            if devices_status != 201:
                return stub._error(devices_status, "validation_error", {"subscription": ["endpoint: no"]})
            return 201, {"id": "d-1", "platform": "web", "provider": "webpush"}, {}
        return plain(method, path, raw, headers)

    stub.devices = []
    stub.route = route


def test_the_preferences_offer_alerts_with_the_platforms_key(client, stub):
    with_push(stub)
    sign_in(client)
    page = client.get("/me/notifications").get_data(as_text=True)
    button = re.search(r'<button type="button"[^>]*id="alerts-on"[^>]*>([^<]*)</button>', page, re.S)
    assert button, "no alerts button"
    assert f'data-key="{KEY}"' in button.group(0) and 'data-url="/me/alerts"' in button.group(0)
    assert " hidden" in button.group(0)  # shown by the script only where the browser can subscribe
    assert button.group(1) == "接收提醒"
    assert " style=" not in page and "<script>" not in page and "onclick" not in page  # CSP-clean
    # The key is asked once for everyone, not on every page.
    client.get("/me/notifications")
    asked = [r for r in stub.requests if r["path"].endswith("/vapid-public-key")]
    assert len(asked) == 1


def test_no_button_when_the_platform_sends_no_web_push(client, stub):
    with_push(stub, key=None)
    sign_in(client)
    page = client.get("/me/notifications").get_data(as_text=True)
    assert client.get("/me/notifications").status_code == 200
    assert 'id="alerts-on"' not in page


def test_a_subscription_is_registered_through_the_gateway_with_the_csrf_token(client, stub):
    with_push(stub)
    sign_in(client)
    token = csrf_of(client.get("/me/notifications").get_data(as_text=True))
    # Without the page's CSRF token: refused, nothing registered.
    assert client.post("/me/alerts", json=SUBSCRIPTION).status_code == 400
    assert stub.devices == []
    response = client.post("/me/alerts", json=SUBSCRIPTION, headers={"X-CSRFToken": token})
    assert response.status_code == 201 and response.json["ok"] is True
    assert response.json["message"] == "本机提醒已开启。"
    [sent] = stub.devices
    assert sent == {
        "provider": "webpush",
        "subscription": {"endpoint": SUBSCRIPTION["endpoint"], "keys": SUBSCRIPTION["keys"]},
    }
    [call] = [r for r in stub.requests if r["path"] == "/api/v1/notifications/devices"]
    assert call["headers"]["Authorization"].startswith("Bearer ")  # the person's own token, server-side


def test_a_bad_subscription_is_refused_and_a_refusal_of_the_platform_is_said(client, stub):
    with_push(stub, devices_status=422)
    sign_in(client)
    token = csrf_of(client.get("/me/notifications").get_data(as_text=True))
    headers = {"X-CSRFToken": token}
    for bad in ({}, {"endpoint": "https://x"}, {**SUBSCRIPTION, "endpoint": "http://fcm.googleapis.com/x"}, [1]):
        response = client.post("/me/alerts", json=bad, headers=headers)
        assert response.status_code == 400 and response.json["ok"] is False
    assert stub.devices == []
    response = client.post("/me/alerts", json=SUBSCRIPTION, headers=headers)
    assert response.status_code == 422 and response.json["message"] == "未能开启提醒。"


def test_signed_out_no_subscription_is_taken(client, stub):
    with_push(stub)
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/me/alerts", json=SUBSCRIPTION, headers={"X-CSRFToken": token})
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]
    assert stub.devices == []


def test_the_service_worker_shows_a_push_and_opens_the_inbox(client):
    worker = client.get("/sw.js").get_data(as_text=True)
    assert 'const INBOX_URL = "/inbox"' in worker
    assert re.search(r'const ICON_URL = "/static/img/icon-192\.png\?v=\w+"', worker)
    assert 'addEventListener("push"' in worker and "showNotification" in worker
    assert 'addEventListener("notificationclick"' in worker and "openWindow" in worker


def test_the_script_subscribes_with_the_key_and_posts_with_the_csrf_header(client):
    page = client.get("/login").get_data(as_text=True)
    src = re.search(r'<script src="(/static/js/app\.js[^"]*)"', page).group(1)
    script = client.get(src).get_data(as_text=True)
    assert "pushManager.subscribe" in script and "applicationServerKey" in script
    assert '"X-CSRFToken"' in script and "userVisibleOnly: true" in script
