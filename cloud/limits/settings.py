"""The `limits:` section of hub.yaml (who the client is, the hub-wide limits) and the entry
page's door limit (`stores[].entry.door_limit`).

Kept apart from cloud/config.py (which holds them) so the limits own their schema;
nothing here imports the rest of the hub.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cloud.limits.addresses import Header, parse_network


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FailureLimit(_Strict):
    """Failed tries from one address (an IPv4 address, an IPv6 /64) before it pauses."""

    max_failures: int = Field(ge=1, le=100000, description="Failures per window before a pause.")
    window_seconds: int = Field(
        ge=10,
        le=86400,
        description="The window they are counted over; the pause lasts until it ends.",
    )


class LimitsConfig(_Strict):
    """Limits on guessing across the hub (docs/hub.md, Limits on guessing)."""

    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDR blocks (10.0.0.0/8, 2001:db8::/48) of the reverse "
        "proxies in front of the hub. Only a request from one of them has its forwarding "
        "header read; the client is the right-most hop that is not one of them. Empty: "
        "the socket's peer is the client and forwarding headers are ignored.",
    )
    client_header: Header = Field(
        "x-forwarded-for",
        description="The header the proxies write: x-forwarded-for, or forwarded (RFC 7239). "
        "Only this one is read: a proxy passes the other one on as the client wrote it.",
    )
    ipv6_prefix: int = Field(
        64,
        ge=32,
        le=128,
        description="IPv6 clients are counted per network of this prefix length (a home "
        "or phone network gets a /64 and picks any address in it).",
    )
    api_tokens: FailureLimit = Field(
        FailureLimit(max_failures=30, window_seconds=600),
        description="Unknown bearer tokens on the API; past the limit every request from "
        "the address is 429, even with a right token, until the window ends.",
    )
    dashboard_login: FailureLimit = Field(
        FailureLimit(max_failures=10, window_seconds=900),
        description="Wrong tokens at the dashboard login.",
    )
    courier_links: FailureLimit = Field(
        FailureLimit(max_failures=20, window_seconds=600),
        description="Courier page links (/c/STORE/ORDER?sig=...) with a wrong signature.",
    )
    enrollment_codes: FailureLimit = Field(
        FailureLimit(max_failures=10, window_seconds=3600),
        description="Wrong, used or expired enrollment codes (POST /api/v1/enroll).",
    )
    pay_pages: FailureLimit = Field(
        FailureLimit(max_failures=30, window_seconds=600),
        description="Pay pages (/pay/ID) asked for a payment that does not exist.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        out = []
        for entry in v:
            try:
                out.append(str(parse_network(str(entry))))
            except ValueError:
                raise ValueError(
                    f"{str(entry)[:60]!r} is not an address or CIDR block "
                    "(like 10.0.0.5, 10.0.0.0/8 or 2001:db8::/48)"
                ) from None
        return out


class DoorLimit(_Strict):
    """Wrong answers at one door from everyone together: what catches an attacker who
    drops the cookie and changes address. Past it the door's page pauses for everyone
    but its regulars; the owner is alerted (alert trigger `entry_attack`)."""

    max_wrong: int = Field(
        30, ge=1, le=100000, description="Wrong answers at the door per window before a pause."
    )
    window_seconds: int = Field(
        300, ge=10, le=86400, description="The window; the first pause lasts until it ends."
    )
    max_pause_seconds: int = Field(
        3600,
        ge=10,
        le=86400,
        description="A window filled again right after a pause is twice as long as the "
        "one before, up to this: a sustained attack gets ever fewer guesses.",
    )
    max_wrong_per_day: int = Field(
        200,
        ge=1,
        le=1000000,
        description="Wrong answers at the door per 24 hours: catches an attacker who stays "
        "just under max_wrong; past it the page pauses until the day's window ends.",
    )
    regulars_days: int = Field(
        30,
        ge=0,
        le=365,
        description="A browser that got an entry pass at this store in these many days is "
        "not paused by the door limit (its own and its address's limits still hold); 0: "
        "nobody is.",
    )

    @model_validator(mode="after")
    def _pause_covers_window(self) -> DoorLimit:
        if self.max_pause_seconds < self.window_seconds:
            raise ValueError("max_pause_seconds must be at least window_seconds")
        return self
