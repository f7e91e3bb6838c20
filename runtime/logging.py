"""Logging to stderr, as text or one JSON object per line, with secrets taken out.

`RedactingFilter` sits on the handler, so every record that reaches stderr has passed it,
whichever logger made it (and the formatters redact again, so they are safe on their own;
redacting is idempotent). The hub logs through the same code (cloud/cli.py). What it
takes out:
- the value of any field whose name says secret (token, secret, password, pwd,
  authorization, api/private/signing key, credential, cookie, and a signature: `sig`,
  `sign`, `signature`, `x-signature`): "[redacted]";
- the same as `name=value` or `name: value` inside text: query strings, form bodies,
  headers, JSON (`"secret": "a \"quoted\" value"`: the whole string) and Python reprs;
- credentials after an authorization scheme (`Authorization: Basic [redacted]`) and
  `Bearer xxx` anywhere; a whole Cookie / Set-Cookie header value;
- the password in a URL (`mqtts://user:[redacted]@host`; a user name alone is kept);
- anything shaped like a JWT (a pass or a signed command): "eyJ…" + its last 6 characters,
  enough to match log lines with each other, useless for replaying the pass;
- PEM private key blocks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, Literal

REDACTED = "[redacted]"

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.([A-Za-z0-9_-]*)")
_BEARER = re.compile(r"(?i)\b(bearer)\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]+")
_SECRET_WORDS = (
    r"token|secret|passw(?:or)?d|passphrase|pwd|authori[sz]ation|credentials?|cookie|"
    r"api[_-]?key|private[_-]?key|signing[_-]?key|app[_-]?secret|session[_-]?id"
)
# Signature names are secret only as a whole name (or its last part): `sig`, `sign`,
# `x-signature`, `hmac_sign`; not `design`, `signal` or `sign_type`.
_SIG_NAME = r"(?:[\w.-]*[_.-])?(?:sig|sign|signature)"
_SECRET_NAME = re.compile(rf"(?i)({_SECRET_WORDS})|^{_SIG_NAME}$")
# Every `name=` / `name: ` (overlapping ones too: the value of one may hold another
# name; _redact_inline keeps those whose name says secret) and its value: a quoted string
# (escapes and all; to the end of the line when it is cut off), or a run of characters up
# to a delimiter. Values that are already `[redacted]`, and cut JWTs, are left as they are.
_INLINE = re.compile(
    r"""(?x)(?=
    \b([\w.-]++)(["']?\s*+[=:]\s*+)
    (?!["']?\[redacted\](?:["'\s,;&)}\]]|$)|eyJ…)
    (?:"((?:[^"\\\n]++|\\.)*+)"?|'((?:[^'\\\n]++|\\.)*+)'?|([^\s"',;&)}\]]++))
    )"""
)
# A Cookie header holds several name=value pairs; any of them may be a session.
_COOKIE = re.compile(r"""(?im)(\b(?:set-)?cookie["']?\s*[=:]\s*)(?!\[redacted\])[^\s"'][^\n"']*""")
# scheme://user:password@host (the password may hold '@': up to the last one).
_URL_USERINFO = re.compile(r"""(?i)\b([a-z][a-z0-9+.-]*://)([^\s/?#@:'"]*)(:[^\s/?#'"]*)?@""")
_PEM = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
)

# Anything redact_text would change contains one of these; most lines contain none, and
# one search is cheaper than the substitutions.
# Searched in the lower-cased text: (?i) with this many alternatives is 20 times slower.
_TRIGGER = re.compile(rf"eyj|bearer|-----begin|://[^\s/?#]*@|sig|{_SECRET_WORDS}")

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _userinfo(m: re.Match[str]) -> str:
    if m.group(3) is None:  # a user name alone (postgresql://postgres@host): kept
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}:{REDACTED}@"


# An authorization value is `Scheme credentials`: the scheme stays, for the reader.
_AUTH_NAME = re.compile(r"(?i)authori[sz]ation")
_AUTH_VALUE = re.compile(r"""["']?[A-Za-z][\w-]*[ \t]+(?!\[redacted\])([^\s"',;)}\]]+)""")
_AUTH_DONE = re.compile(r"""["']?[A-Za-z][\w-]*[ \t]+\[redacted\]""")


def _redact_inline(text: str) -> str:
    spans: list[tuple[int, int]] = []
    for m in _INLINE.finditer(text):
        if not is_secret_name(m.group(1)):
            continue
        if _AUTH_NAME.search(m.group(1)):
            value_at = m.end(2)
            if credentials := _AUTH_VALUE.match(text, value_at):
                spans.append(credentials.span(1))
                continue
            if _AUTH_DONE.match(text, value_at):
                continue
        group = next(g for g in (3, 4, 5) if m.group(g) is not None)
        if m.start(group) < m.end(group):  # inside the quotes, if any
            spans.append((m.start(group), m.end(group)))
    if not spans:
        return text
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    out: list[str] = []
    done = 0
    for start, end in merged:
        out += [text[done:start], REDACTED]
        done = end
    out.append(text[done:])
    return "".join(out)


def redact_text(text: str) -> str:
    """Take secrets out of free text (a message, a traceback, a repr)."""
    if not _TRIGGER.search(text.lower()):
        return text
    text = _PEM.sub("[private key]", text)
    text = _JWT.sub(lambda m: f"eyJ…{m.group(0)[-6:]}", text)
    text = _URL_USERINFO.sub(_userinfo, text)
    text = _COOKIE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _redact_inline(text)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact_value(value: Any, name: str = "") -> Any:
    """Redact a logged value; `name` is its field name (a secret name hides any value)."""
    if name and is_secret_name(name) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {str(k): redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # anything else gets logged through its str(), which may hold a secret (a model's repr)
    return redact_text(_safe_str(value))


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not break the caller's log call
        return f"<unprintable {type(value).__name__}>"


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and k[0] != "_"}


class RedactingFilter(logging.Filter):
    """Rewrites the record in place: the message (formatted with its args) and every
    `extra` field are redacted; tracebacks are redacted by the formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception as e:  # a bad format string: log the template, not the arguments
            kinds = ", ".join(type(a).__name__ for a in _as_tuple(record.args))
            message = f"{record.msg} [bad log call: {type(e).__name__}; arguments ({kinds}) hidden]"
        record.msg = redact_text(message)
        record.args = None
        for key, value in extra_fields(record).items():
            setattr(record, key, redact_value(value, key))
        return True


def _as_tuple(args: object) -> tuple[object, ...]:
    if args is None:
        return ()
    return args if isinstance(args, tuple) else (args,)


def _timestamp(record: logging.LogRecord) -> str:
    ts = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then the `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        for key, value in extra_fields(record).items():
            payload.setdefault(key, redact_value(value, key))
        if record.exc_info:
            payload["exc"] = redact_text(self.formatException(record.exc_info))
        if record.stack_info:
            payload["stack"] = redact_text(self.formatStack(record.stack_info))
        return json.dumps(payload, ensure_ascii=False, default=lambda o: redact_text(_safe_str(o)))


class TextFormatter(logging.Formatter):
    """`ts LEVEL logger: msg key=value ...`, for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        message = redact_text(record.getMessage())
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {message}"
        extras = extra_fields(record)
        if extras:
            line += " " + " ".join(
                f"{k}={_text_value(redact_value(v, k))}" for k, v in extras.items()
            )
        if record.exc_info:
            line += "\n" + redact_text(self.formatException(record.exc_info))
        if record.stack_info:
            line += "\n" + redact_text(self.formatStack(record.stack_info))
        return line


def _text_value(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() for c in value):
        return value
    return json.dumps(value, ensure_ascii=False, default=lambda o: redact_text(_safe_str(o)))


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (as logging.lastResort does),
    and reports its own failures without the record's arguments or call stack, which is
    what the default `handleError` prints, secrets and all."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass

    def handleError(self, record: logging.LogRecord) -> None:
        if not logging.raiseExceptions:
            return
        exc = sys.exc_info()[1]
        with contextlib.suppress(Exception):
            sys.stderr.write(
                f"logging error in {record.name} ({record.pathname}:{record.lineno}): "
                f"{type(exc).__name__}: {redact_text(str(exc))}\n"
            )


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def setup_logging(fmt: Literal["text", "json"], level: str = "INFO") -> logging.Handler:
    """Send every log record to stderr in `fmt`, redacted. Calling it again replaces the
    handler it installed before (other handlers, e.g. pytest's, are left alone)."""
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be text or json, not {fmt!r}")
    if level.upper() not in _LEVELS:
        raise ValueError(f"log level must be one of {', '.join(_LEVELS)}, not {level!r}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_shopgate", False)]:
        root.removeHandler(old)
        old.close()
    handler = StderrHandler()
    handler._shopgate = True  # type: ignore[attr-defined]  # a mark: ours, to replace next time
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    return handler
