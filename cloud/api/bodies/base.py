"""The base of every body model, and how a body that fails its model is refused.

Request models are strict (JSON's own types: `"5"` is not a number, `true` is not 1), as
the hand-written checks they replace were, and ignore fields they do not know, so a newer
client may send more. A refusal is the API's usual error (cloud/api/errors.py): 400 with
`code`, a `message` naming the field, and `field`/`index` locating it. A model may word a
field's refusal itself in `messages`, keyed by the field's path with `*` for list indexes
("items.*.qty"); `{path}` in the text is the field's path as the caller wrote it
("items[2].qty"), `{item}` the list item it is in ("items[2]").
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError, WithJsonSchema

from cloud.api.errors import ApiError

M = TypeVar("M", bound="Body")

# An RFC 3339 time as the hub writes it, kept as its text: answers are described, not
# re-rendered, so the model must not turn it into a datetime and back.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class Body(BaseModel):
    """A request body."""

    model_config = ConfigDict(strict=True, extra="ignore")

    # The refusal's wording per field path, where the API has always worded it so.
    messages: ClassVar[dict[str, str]] = {}
    # The code of a refusal by a domain rule (a validator's ValueError), when the API
    # gives those their own code (bad_product beside bad_body, say).
    rule_code: ClassVar[str | None] = None


class Reply(BaseModel):
    """A response body. Open, as JSON Schema objects are unless closed: a reader must
    allow fields added later (CONTRACTS: extend only)."""


def refusal(model: type[Body], error: ValidationError, code: str) -> ApiError:
    """The API error for the first thing wrong with a body."""
    first = error.errors(include_url=False)[0]
    loc = tuple(first["loc"])
    path = _path(loc)
    pattern = ".".join("*" if isinstance(part, int) else str(part) for part in loc)
    index = next((part for part in loc if isinstance(part, int)), None)
    item = _path(loc[: loc.index(index) + 1]) if index is not None else path
    worded = model.messages.get(pattern)
    if first["type"] == "value_error":
        # A validator's own reason (the domain's rule): shown as it says it.
        code = model.rule_code or code
        reason = str(first.get("ctx", {}).get("error", first["msg"]))
        message = f"{path}: {reason}" if path else reason
    elif worded is not None:
        message = worded.format(path=path, item=item)
    elif first["type"] == "missing":
        message = f"{path} is required"
    else:
        reason = first["msg"][0].lower() + first["msg"][1:]
        message = f"{path}: {reason}" if path else reason
    return ApiError(400, code, message, field=path or None, index=index)


def parse(model: type[M], data: Any, *, code: str = "bad_body") -> M:
    """`data` as `model`, or the ApiError that refuses it."""
    if not isinstance(data, dict):
        raise ApiError(400, code, "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise refusal(model, e, code) from None


async def read_json(
    request: web.Request,
    *,
    code: str = "bad_body",
    not_json: str = "the body must be a JSON object",
) -> Any:
    """The request's body as JSON, or the ApiError that refuses it."""
    try:
        return await request.json()
    except ValueError:
        raise ApiError(400, code, not_json) from None


async def read_body(
    request: web.Request,
    model: type[M],
    *,
    code: str = "bad_body",
    not_json: str = "the body must be a JSON object",
) -> M:
    """The request's JSON body as `model`; a body that is not JSON is refused `not_json`."""
    return parse(model, await read_json(request, code=code, not_json=not_json), code=code)


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
