"""What the store's owner does at the hub, as plain HTTP: the JSON API with the merchant
token, and the dashboard's login form as a browser fills it in."""

from __future__ import annotations

import html
import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


def hub_api(hub_url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    req = urllib.request.Request(
        hub_url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise SystemExit(f"demo: {method} {path} answered {e.code}: {e.read()[:300]!r}") from None


def dashboard_login(hub_url: str, token: str) -> tuple[str, str]:
    """Log in at /dashboard/login as a phone does (cookies kept); returns the page the
    login lands on and its URL."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(f"{hub_url}/dashboard/login", timeout=10) as resp:
        form = resp.read().decode()
    csrf = html.unescape(re.search(r'name="csrf" value="([^"]*)"', form)[1])
    data = urllib.parse.urlencode({"csrf": csrf, "token": token}).encode()
    req = urllib.request.Request(f"{hub_url}/dashboard/login", data=data, method="POST")
    with opener.open(req, timeout=20) as resp:
        return resp.read().decode(), resp.geturl()


def openapi(hub_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{hub_url}/api/v1/openapi.json", timeout=10) as resp:
        return json.loads(resp.read())
