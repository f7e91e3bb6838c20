"""Rendering the hub's pages (the entry pages, the owner's dashboard): Jinja2 templates
(autoescaped) with their CSS inlined.

The CSS is inlined rather than linked, so a phone on a weak signal fetches one document;
its hash goes into the Content-Security-Policy, which then allows no other style, script,
frame or outside resource.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

HERE = Path(__file__).parent
TEMPLATES = ("question.html", "pass.html", "message.html")


class Pages:
    def __init__(
        self,
        templates: tuple[str, ...] = TEMPLATES,
        css_file: str = "entry.css",
        filters: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self._templates = templates
        self._css_file = css_file
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters.update(filters or {})
        self._css = ""
        self._csp = ""

    def load(self) -> None:
        """Read the templates and the CSS (blocking: call it in a thread, once)."""
        for name in self._templates:
            self._env.get_template(name)
        self._css = (HERE / "static" / self._css_file).read_text(encoding="utf-8")
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
        headers["X-Frame-Options"] = "DENY"  # for browsers that ignore frame-ancestors
        # Pages carry form tokens, passes and an owner's figures: kept out of caches and
        # of Referer headers.
        headers["Cache-Control"] = "no-store"
        headers["Referrer-Policy"] = "no-referrer"
        return response
