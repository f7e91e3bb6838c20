"""`${VAR}` / `${VAR:-default}` expansion of config values from the environment.

`$$` stands for a literal `$`; a `$` not followed by `{` or `$` is kept as it is (so a
password like `pa$word` needs no escaping). As in the shell, `${VAR:-default}` uses the
default when VAR is unset or empty. Defaults are literal text: they are not expanded again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TOKEN = re.compile(
    r"\$(?:(?P<escape>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<sep>:-(?P<default>[^}]*))?\}|(?P<bad>\{))"
)


class ExpansionError(ValueError):
    """A reference that cannot be expanded; the message names the variable."""

    def __init__(self, message: str, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable


def expand(text: str, environ: Mapping[str, str]) -> str:
    """`text` with every `${VAR}`, `${VAR:-default}` and `$$` replaced.

    Raises ExpansionError for an unset `${VAR}` without default and for a malformed
    `${...}` reference.
    """
    if "$" not in text:
        return text

    def replace(m: re.Match[str]) -> str:
        if m["escape"]:
            return "$"
        if m["bad"]:
            raise ExpansionError(
                "malformed ${...} reference: use ${NAME} or ${NAME:-default} "
                "(NAME: letters, digits, _), or $$ for a literal $"
            )
        value = environ.get(m["name"])
        if m["sep"] is not None:
            return value if value else m["default"]
        if value is None:
            raise ExpansionError(
                f"environment variable {m['name']} is not set "
                f"(set it, or give a default: ${{{m['name']}:-value}})",
                m["name"],
            )
        return value

    return _TOKEN.sub(replace, text)
