"""Rendering the entry pages: Jinja2 templates (autoescaped) with the CSS inlined.

The CSS is inlined rather than linked, so a phone on a weak signal fetches one document;
its hash goes into the Content-Security-Policy, which then allows no other style, script,
frame or outside resource.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

HERE = Path(__file__).parent
TEMPLATES = ("question.html", "pass.html", "message.html")


class Pages:
    def __init__(self) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._css = ""
        self._csp = ""

    def load(self) -> None:
        """Read the templates and the CSS (blocking: call it in a thread, once)."""
        for name in TEMPLATES:
            self._env.get_template(name)
        self._css = (HERE / "static" / "entry.css").read_text(encoding="utf-8")
        digest = base64.b64encode(hashlib.sha256(self._css.encode()).digest()).decode()
        self._csp = (
            f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'self' data:; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        )

    def render(self, name: str, *, status: int = 200, **context: Any) -> web.Response:
        html = self._env.get_template(name).render(css=self._css, **context)
        response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
        headers = response.headers
        headers["Content-Security-Policy"] = self._csp
        headers["X-Content-Type-Options"] = "nosniff"
        # Pages carry form tokens and passes: kept out of caches and of Referer headers.
        headers["Cache-Control"] = "no-store"
        headers["Referrer-Policy"] = "no-referrer"
        return response
