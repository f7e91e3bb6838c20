"""Where the store token goes and which keys are revoked: hub.url must be https unless
the hub is on this machine, a hub elsewhere needs a real token, and a revoked kid is not
also trusted. Each problem names its line."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agent.config.trust import is_loopback
from tests.agent.config.config_files import BASE, edit

Problems = Callable[..., list[str]]
TOKEN_LINE = "  token: tok-0123456789abcdef\n"


def hub(url: str, token: str | None = "tok-0123456789abcdef") -> str:
    text = edit(BASE, "url: https://hub.test", f"url: {url}")
    line = "" if token is None else f"  token: {token}\n"
    return edit(text, TOKEN_LINE, line)


@pytest.mark.parametrize(
    "url",
    [
        "https://hub.test",
        "https://hub.test:8443/base/",
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://[::1]:8080",
        "http://localhost:8080",
        "http://hub.localhost",
    ],
)
def test_https_or_a_hub_on_this_machine_is_fine(problems: Problems, url: str) -> None:
    assert problems(hub(url)) == []


@pytest.mark.parametrize(
    "url", ["http://hub.test", "http://10.0.0.5:8080", "http://[fe80::1]", "http://localhost.evil"]
)
def test_plain_http_to_another_machine_is_refused(problems: Problems, url: str) -> None:
    [problem] = problems(hub(url))
    assert problem.startswith("10: hub.url: http://") and "use https://" in problem


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hub.test", "not a URL like https://hub.example.com"),
        ("hub.test", "not a URL like https://hub.example.com"),
        ("https://user:pw@hub.test", "credentials do not go in the URL"),
        ("https://hub.test:99999", "not a URL like https://hub.example.com"),
    ],
)
def test_a_hub_url_that_is_no_url_is_refused(problems: Problems, url: str, message: str) -> None:
    [problem] = problems(hub(url))
    assert problem.startswith("10: hub.url: ") and message in problem
    assert "pw" not in problem.split("URL")[-1]


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "a hub at hub.test needs this store's token"),
        ('""', "a hub at hub.test needs this store's token"),
        ("demo-token", "the demo token is only for a hub on this machine"),
        ("s3cr3t", "too short to be a secret (6 characters"),
    ],
)
def test_a_hub_elsewhere_needs_a_real_token(
    problems: Problems, token: str | None, message: str
) -> None:
    [problem] = problems(hub("https://hub.test", token))
    assert " hub.token: " in problem and message in problem
    assert "s3cr3t" not in problem  # a secret is never echoed


def test_the_demo_token_is_fine_on_loopback(problems: Problems) -> None:
    assert problems(hub("http://127.0.0.1:8080", "demo-token")) == []
    assert problems(hub("http://127.0.0.1:8080", None)) == []


def test_a_kid_both_trusted_and_revoked_is_refused(problems: Problems) -> None:
    text = edit(BASE, "      pem_file: keys/hub.pub.pem\n", "      pem_file: keys/hub.pub.pem\n"
                "  revoked_kids: [old-2023, k1]\n")  # fmt: skip
    assert problems(text) == [
        "9: access.revoked_kids.1: key 'k1' is both trusted (access.keys) and revoked; "
        "remove it from one"
    ]
    fine = edit(BASE, "      pem_file: keys/hub.pub.pem\n", "      pem_file: keys/hub.pub.pem\n"
                "  revoked_kids: [old-2023]\n")  # fmt: skip
    assert problems(fine) == []


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.255.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("LOCALHOST", True),
        ("a.localhost.", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_what_counts_as_this_machine(host: str | None, local: bool) -> None:
    assert is_loopback(host) is local
