"""The web process on a stand-in gateway: sessions and tokens, CSRF, security headers, static files,
languages, errors. (What depends on the services is tested in a real browser on the real platform.)"""

from __future__ import annotations

import gzip
import re
import threading
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from linli_web.auth import REFRESH_MARGIN_SECONDS

TRANSLATIONS = Path(__file__).resolve().parents[1] / "src" / "linli_web" / "translations"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, password="right-password"):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"csrf_token": token, "phone": "13900000007", "password": password})


def test_security_headers_and_a_strict_policy(client):
    response = client.get("/login")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy and "unsafe" not in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "private, no-store"
    html = response.get_data(as_text=True)
    assert "<script>" not in html and " style=" not in html and "onclick" not in html


def test_sign_in_keeps_tokens_on_the_server_only(client, stub, app):
    response = sign_in(client)
    assert response.status_code == 303 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = client.get("/me").get_data(as_text=True)
    assert "Yang Jing" in page
    # Neither token appears in a page or a cookie.
    [pair_token] = list(stub.refresh_tokens)
    assert pair_token not in page and pair_token not in cookie
    assert "eyJ" not in page and "eyJ" not in cookie


def test_cookies_are_secure_over_https(client):
    token = csrf_of(client.get("/login", base_url="https://web.example").get_data(as_text=True))
    response = client.post(
        "/login",
        data={"csrf_token": token, "phone": "13900000007", "password": "right-password"},
        base_url="https://web.example",
        headers={"Referer": "https://web.example/login"},
    )
    assert "Secure" in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in response.headers


def test_a_form_without_its_csrf_token_is_refused(client):
    response = client.post("/login", data={"phone": "13900000007", "password": "right-password"})
    assert response.status_code == 400
    assert "This form was open too long" in response.get_data(as_text=True) or "表单" in response.get_data(as_text=True)


def test_a_wrong_password_names_the_field_and_a_bad_next_is_ignored(client):
    response = sign_in(client, password="wrong")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and 'href="#phone"' in html and 'aria-invalid="true"' in html
    token = csrf_of(html)
    evil = client.post(
        "/login",
        data={"csrf_token": token, "phone": "13900000007", "password": "right-password", "next": "//evil.example/x"},
    )
    assert evil.headers["Location"] == "/"


def test_requests_at_once_refresh_in_turn_and_never_reuse_a_refresh_token(stub, app):
    stub.access_ttl = REFRESH_MARGIN_SECONDS - 5  # always "about to expire": every request refreshes
    client = app.test_client()
    sign_in(client)
    cookie = client.get_cookie("linli_session").value
    results: list[int] = []

    def one_request():
        other = app.test_client()
        other.set_cookie("linli_session", cookie)
        results.append(other.get("/me").status_code)

    threads = [threading.Thread(target=one_request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Each request found the token stale; the lock let one refresh at a time, and each next one
    # found a fresh pair again only if it was fresh - here every pair is "stale", so each refreshed
    # with the latest refresh token, never a used one: nobody was signed out.
    assert results == [200, 200, 200, 200]
    assert stub.refresh_tokens, "a reused refresh token would have revoked every token"
    assert len(stub.used_refresh) == stub.refresh_calls


def test_a_revoked_session_leads_back_to_sign_in(client, stub):
    sign_in(client)
    stub.refresh_tokens.clear()
    stub.access_ttl = 1
    stub.user = dict(stub.user)
    # The vault's access token still passes the stub; make the next call fail as revoked.
    stub.fail_with = None
    original = stub.route

    def revoked(method, path, raw, headers):
        if path.startswith("/api/v1/auth/refresh"):
            return original(method, path, raw, headers)
        return stub._error(401, "unauthorized")

    stub.route = revoked
    response = client.get("/me/follows")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert client.get("/me").status_code == 302  # the session holds no tokens any more


def test_sign_out_forgets_the_tokens(client, stub, app):
    sign_in(client)
    token = csrf_of(client.get("/me").get_data(as_text=True))
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert any(r["path"] == "/api/v1/auth/logout" for r in stub.requests)
    assert client.get("/me").status_code == 302
    tokens_dir = Path(app.extensions["linli_web.settings"].data_dir) / "web-tokens"
    assert not [p for p in tokens_dir.iterdir() if not p.name.startswith("__")]


def test_the_platform_down_is_a_page_not_a_crash(client, stub):
    sign_in(client)
    stub.fail_with = 503
    response = client.get("/me/follows")
    assert response.status_code == 503
    assert "try again" in response.get_data(as_text=True) or "再试" in response.get_data(as_text=True)


def test_static_files_have_versioned_urls_long_caching_and_gzip(client):
    html = client.get("/login").get_data(as_text=True)
    url = re.search(r'href="(/static/css/app\.css\?v=[0-9a-f]{12})"', html).group(1)
    response = client.get(url, headers={"Accept-Encoding": "gzip, br"})
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["Content-Encoding"] == "gzip"
    assert b".button" in gzip.decompress(response.data)
    stale = client.get("/static/css/app.css?v=000000000000")
    assert stale.headers["Cache-Control"] == "public, max-age=300" and "Content-Encoding" not in stale.headers
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/vendor/htmx/htmx.min.js").status_code == 200


def test_chinese_by_default_english_by_browser_or_switch_remembered(client):
    assert 'lang="zh-CN"' in client.get("/login").get_data(as_text=True)
    english = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"}).get_data(as_text=True)
    assert 'lang="en"' in english and "Sign in" in english
    token = csrf_of(english)
    switched = client.post("/settings/language", data={"csrf_token": token, "lang": "en", "next": "/login"})
    assert switched.status_code == 303 and switched.headers["Location"] == "/login"
    assert "Max-Age=31536000" in switched.headers["Set-Cookie"]
    assert 'lang="en"' in client.get("/login", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    token = csrf_of(client.get("/login").get_data(as_text=True))
    client.post("/settings/text-size", data={"csrf_token": token, "size": "large", "next": "/login"})
    assert 'class="large"' in client.get("/login").get_data(as_text=True)


def _plain(text: str | list | tuple) -> str | tuple:
    """A plural message's forms (a list from a .mo, a tuple from a .po) as one comparable tuple."""
    return text if isinstance(text, str) else tuple(text)


def test_every_message_has_a_chinese_translation_and_the_compiled_catalogue_is_current():
    with (TRANSLATIONS / "messages.pot").open("rb") as handle:
        template = {_plain(m.id) for m in read_po(handle) if m.id}
    with (TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        po = {_plain(m.id): _plain(m.string) for m in read_po(handle, locale="zh") if m.id}
    with (TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.mo").open("rb") as handle:
        mo = {_plain(m.id): _plain(m.string) for m in read_mo(handle) if m.id}
    assert template <= set(po), f"not in the catalogue (linli-web i18n update): {sorted(template - set(po))[:5]}"
    assert not [k for k, v in po.items() if not v or not all(v)], "untranslated messages"
    assert mo == po, "messages.mo is older than messages.po: run `linli-web i18n compile`"


def test_probes_manifest_and_service_worker(client):
    assert client.get("/web/healthz").json == {"status": "ok"}
    manifest = client.get("/manifest.webmanifest")
    assert manifest.headers["Content-Type"].startswith("application/manifest+json")
    assert manifest.json["start_url"] == "/"
    worker = client.get("/sw.js").get_data(as_text=True)
    assert worker.startswith("const OFFLINE_URL") and "/offline" in worker
    assert "navigate" in worker  # only page loads fall back; nothing else is cached


def test_sign_in_with_an_sms_code_one_question_a_page(client, stub):
    # The sign-in page offers the way, in Chinese first and in English.
    assert "用短信验证码登录" in client.get("/login").get_data(as_text=True)
    english = client.get("/login?next=/me", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Sign in with an SMS code" in english and "/login/code?next=/me" in english
    # Without a phone number given, the code page sends back to the first question.
    assert client.get("/login/code/enter").headers["Location"].endswith("/login/code")

    page = client.get("/login/code?next=/me").get_data(as_text=True)
    assert 'name="phone"' in page and 'name="password"' not in page
    bad = client.post("/login/code", data={"csrf_token": csrf_of(page), "phone": "12", "next": "/me"})
    assert bad.status_code == 400 and stub.codes_sent == []
    sent = client.post("/login/code", data={"csrf_token": csrf_of(page), "phone": "13900000007", "next": "/me"})
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/login/code/enter")
    assert [(c["phone"], c["purpose"]) for c in stub.codes_sent] == [("13900000007", "login")]

    enter = client.get("/login/code/enter").get_data(as_text=True)
    assert "13900000007" in enter and 'autocomplete="one-time-code"' in enter
    wrong = client.post("/login/code/enter", data={"csrf_token": csrf_of(enter), "code": "135790"})
    assert wrong.status_code == 400 and "验证码不对或已过期" in wrong.get_data(as_text=True)
    assert client.get("/me").status_code in (302, 303)  # still signed out
    right = client.post("/login/code/enter", data={"csrf_token": csrf_of(enter), "code": "246810"})
    assert right.status_code == 303 and right.headers["Location"] == "/me"
    assert "Yang Jing" in client.get("/me").get_data(as_text=True)
    login = [r for r in stub.requests if r["path"] == "/api/v1/auth/login"]
    assert len(login) == 2


def test_the_api_is_asked_in_the_readers_language(client, stub):
    """The API words its error messages and labels in the language of the page (Accept-Language):
    Chinese by default, English once the person chose it."""
    sign_in(client)
    stub.requests.clear()
    client.get("/")
    chinese = [r for r in stub.requests if r["path"].startswith("/api/v1/") and "Authorization" in r["headers"]]
    assert chinese and {r["headers"].get("Accept-Language") for r in chinese} == {"zh-CN"}
    token = csrf_of(client.get("/").get_data(as_text=True))
    client.post("/settings/language", data={"csrf_token": token, "lang": "en", "next": "/"})
    stub.requests.clear()
    client.get("/")
    english = [r for r in stub.requests if r["path"].startswith("/api/v1/")]
    assert english and {r["headers"].get("Accept-Language") for r in english} == {"en"}
