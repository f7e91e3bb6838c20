"""load_config: the demo config loads; each kind of mistake is reported at its line."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.config import ConfigError, check_config_main, load_config
from agent.config.schema import LockBusDevice
from tests.agent.config.config_files import BASE, edit, private_pem, public_pem

REPO = Path(__file__).resolve().parents[3]

Problems = Callable[..., list[str]]


def test_demo_config_loads_with_a_real_key(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "keys").mkdir(parents=True)
    (run / "keys" / "hub-signing.pub.pem").write_bytes(public_pem())
    cfg = load_config(REPO / "config.yaml", environ={"SHOPGATE_RUN": str(run)})
    assert cfg.store.id == "demo-001"
    assert cfg.storage.dir == run / "agent"
    assert cfg.access.keys[0].kid == "demo"
    assert cfg.access.keys[0].pem_file == run / "keys" / "hub-signing.pub.pem"
    assert cfg.hub.url == "http://127.0.0.1:8080"
    assert cfg.hub.token == "demo-token"
    assert cfg.mqtt.url == "mqtt://127.0.0.1:1883"
    assert [d.id for d in cfg.doors] == ["front"]
    bus = cfg.device("lockbus-1")
    assert isinstance(bus, LockBusDevice) and bus.port == run / "sim" / "lockbus-1"


def test_demo_config_defaults_resolve_against_the_config_folder(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes((REPO / "config.yaml").read_bytes())
    (tmp_path / ".run" / "keys").mkdir(parents=True)
    (tmp_path / ".run" / "keys" / "hub-signing.pub.pem").write_bytes(public_pem())
    env = {"SHOPGATE_HUB_URL": "https://hub.example", "SHOPGATE_STORE_TOKEN": "s" * 24}
    cfg = load_config(config, environ=env)
    assert cfg.storage.dir == tmp_path / ".run" / "agent"
    assert cfg.hub.url == "https://hub.example"


def test_relative_config_path_still_resolves_against_its_folder(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (store_dir / "agent.yaml").write_text(BASE)
    monkeypatch.chdir(store_dir.parent)
    cfg = load_config(Path(store_dir.name) / "agent.yaml", environ={})
    assert cfg.storage.dir == store_dir / "data"
    assert cfg.storage.dir.is_absolute()


def test_valid_base_has_no_problems(problems: Problems) -> None:
    assert problems(BASE) == []


def test_unknown_key_suggests_the_right_one(problems: Problems) -> None:
    text = edit(BASE, "    port: /dev/ttyUSB0", "    prot: /dev/ttyUSB0")
    assert problems(text) == [
        "14: devices.0.port: missing required key 'port'",
        "16: devices.0.prot: unknown key 'prot' (did you mean 'port'?)",
    ]


def test_unknown_top_level_key(problems: Problems) -> None:
    assert problems(BASE + "mqqt:\n  url: x\n") == [
        "26: mqqt: unknown key 'mqqt' (did you mean 'mqtt'?)"
    ]


def test_unknown_key_without_a_near_name(problems: Problems) -> None:
    text = edit(BASE, "  id: shop-1", "  id: shop-1\n  colour: blue")
    assert problems(text) == ["3: store.colour: unknown key 'colour'"]


def test_wrong_type(problems: Problems) -> None:
    assert problems(edit(BASE, "board: 1,", "board: abc,")) == [
        "23: doors.0.lock.board: expected an integer, got 'abc'"
    ]
    assert problems(edit(BASE, "  id: shop-1", "  id: 123")) == [
        "2: store.id: expected text, got 123 (put it in quotes to make it text)"
    ]
    assert problems(edit(BASE, "  dir: data", "  dir: data\n  max_journal_mb: 2")) == [
        "5: storage.max_journal_mb: must be at least 16, got 2"
    ]


def test_missing_key_is_reported_at_its_parent(problems: Problems) -> None:
    assert problems(edit(BASE, "board: 1, ", "")) == [
        "23: doors.0.lock.board: missing required key 'board'"
    ]
    assert problems(edit(BASE, 'mqtt: {url: "mqtt://broker.test"}\n', "")) == [
        "1: mqtt: missing required key 'mqtt'"
    ]
    text = edit(BASE, "storage:\n  dir: data\n", "storage:\n  max_journal_mb: 64\n")
    assert problems(text) == ["3: storage.dir: missing required key 'dir'"]


def test_missing_device_reference(problems: Problems) -> None:
    assert problems(edit(BASE, "scanner: scan", "scanner: scann")) == [
        "25: doors.0.scanner: no device 'scann' (devices: bus, scan)"
    ]


def test_wrong_device_kind(problems: Problems) -> None:
    assert problems(edit(BASE, "device: bus,", "device: scan,")) == [
        "23: doors.0.lock.device: device 'scan' is a scanner, not a lockbus"
    ]
    kinds = "lockbus, scanner, keypad, gpio, printer, vending, hid_scanner"
    assert problems(edit(BASE, "kind: scanner", "kind: plotter")) == [
        f"19: devices.1.kind: unknown kind 'plotter' (one of: {kinds})"
    ]
    assert problems(edit(BASE, "    kind: scanner\n", "")) == [
        f"18: devices.1.kind: missing required key 'kind' (one of: {kinds})"
    ]


def test_bad_time_ranges(problems: Problems) -> None:
    assert problems(BASE + "business:\n  hours: ['25:00-26:00']\n") == [
        "27: business.hours: '25:00-26:00' has an impossible time (hours 00-24, minutes 00-59)"
    ]
    assert problems(BASE + "business:\n  hours:\n    mon: ['08:00-08:00']\n") == [
        "28: business.hours.mon: '08:00-08:00' is empty: start and end are the same"
    ]
    assert problems(BASE + "business:\n  hours:\n    mun: ['08:00-09:00']\n") == [
        "28: business.hours.mun: unknown key 'mun' (one of: mon, tue, wed, thu, fri, sat, sun)"
    ]
    assert problems(BASE + "business:\n  hours: 08:00-22:00\n") == [
        "27: business.hours: expected a list or a mapping (indented key: value lines), "
        "got '08:00-22:00'"
    ]


def test_duplicate_ids_and_unknown_time_zone(problems: Problems) -> None:
    text = edit(BASE, "  - id: scan", "  - id: bus")
    text = edit(text, "scanner: scan", "scanner: bus")
    assert problems(text) == [
        "18: devices.1.id: duplicate device id 'bus'",
        "25: doors.0.scanner: device 'bus' is a lockbus, not a scanner",
    ]
    # "Asia" is a folder of the zone database, not a zone.
    assert problems(edit(BASE, "  id: shop-1", "  id: shop-1\n  timezone: Asia")) == [
        "3: store.timezone: unknown time zone 'Asia' (use an IANA name like Asia/Shanghai)"
    ]


def test_unreadable_key_file(problems: Problems, store_dir: Path) -> None:
    text = edit(BASE, "keys/hub.pub.pem", "keys/missing.pem")
    assert problems(text) == [
        f"8: access.keys.0.pem_file: cannot read key file {store_dir}/keys/missing.pem: "
        "No such file or directory"
    ]
    assert problems(edit(BASE, "keys/hub.pub.pem", "keys")) == [
        f"8: access.keys.0.pem_file: cannot read key file {store_dir}/keys: Is a directory"
    ]


def test_private_key_instead_of_public(problems: Problems, store_dir: Path) -> None:
    (store_dir / "keys" / "hub.pub.pem").write_bytes(private_pem())
    [problem] = problems(BASE)
    assert problem.startswith("8: access.keys.0.pem_file: ")
    assert problem.endswith(
        "keys/hub.pub.pem holds a private key; give the hub's public key "
        "(hub-signing.pub.pem) and keep the private key on the hub"
    )
    assert "PRIVATE" not in problem


def test_key_file_of_wrong_type_or_garbage(problems: Problems, store_dir: Path) -> None:
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (store_dir / "keys" / "hub.pub.pem").write_bytes(rsa_pem)
    [problem] = problems(BASE)
    assert problem.endswith("holds a public key of type RSA; hub keys are Ed25519")
    (store_dir / "keys" / "hub.pub.pem").write_text("hello\n")
    [problem] = problems(BASE)
    assert problem.endswith("is not a PEM public key (-----BEGIN PUBLIC KEY-----)")


def test_duplicate_key_ids(problems: Problems) -> None:
    text = edit(
        BASE,
        "      pem_file: keys/hub.pub.pem\n",
        "      pem_file: keys/hub.pub.pem\n    - kid: k1\n      pem_file: keys/hub.pub.pem\n",
    )
    assert problems(text) == ["9: access.keys.1.kid: duplicate key id 'k1'"]


def test_unset_env_var_names_variable_and_key(problems: Problems) -> None:
    text = edit(BASE, "url: https://hub.test", "url: ${HUB_URL}")
    assert problems(text) == [
        "10: hub.url: environment variable HUB_URL is not set "
        "(set it, or give a default: ${HUB_URL:-value})"
    ]
    assert problems(text, environ={"HUB_URL": "https://x"}) == []


def test_env_expansion_happens_before_typing(store_dir: Path) -> None:
    # Inside [ ] and { } a `{` ends a plain value: there ${...} has to be quoted.
    text = edit(BASE, "    boards: [1]", '    boards: ["${BOARD:-1}"]\n    baudrate: ${BAUD:-9600}')
    text = edit(text, "  id: shop-1", '  id: shop-1\n  name: "${NAME:-7}"')
    file = store_dir / "agent.yaml"
    file.write_text(text)
    cfg = load_config(file, environ={"BAUD": "19200"})
    bus = cfg.device("bus")
    assert isinstance(bus, LockBusDevice)
    assert bus.baudrate == 19200 and bus.boards == [1]
    assert cfg.store.name == "7"  # quoted: stays text


def test_env_value_is_not_expanded_again(store_dir: Path) -> None:
    text = edit(BASE, "token: tok-0123456789abcdef", "token: ${TOKEN}")
    file = store_dir / "agent.yaml"
    file.write_text(text)
    cfg = load_config(file, environ={"TOKEN": "a$$b${X}-and-long-enough"})
    assert cfg.hub.token == "a$$b${X}-and-long-enough"


def test_yaml_syntax_error_has_line(problems: Problems) -> None:
    assert problems(edit(BASE, "boards: [1]", "boards: [1")) == [
        "18: -: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence at line 17)"
    ]
    assert problems(edit(BASE, "  id: shop-1", "  id: shop-1\n\tname: x")) == [
        "3: -: invalid YAML: found character '\\t' that cannot start any token; "
        "indent with spaces, not tabs"
    ]


def test_duplicate_key(problems: Problems) -> None:
    text = edit(BASE, "url: https://hub.test", "url: https://a.test\n  url: https://b.test")
    assert problems(text) == ["11: hub.url: duplicate key 'url' (first at line 10)"]


def test_merge_keys_may_override_without_being_duplicates(problems: Problems) -> None:
    text = edit(BASE, "    boards: [1]", "    boards: [1]\n    <<: {poll_ms: 100, boards: [2]}")
    assert problems(text) == []


def test_many_problems_at_once_ordered_by_line(problems: Problems) -> None:
    text = edit(BASE, "  id: shop-1", "  id: shop-1\n  timezone: Mars/Base")
    text = edit(text, "url: https://hub.test", "url: ${HUB}")
    text = edit(text, "    port: /dev/ttyUSB0", "    prot: /dev/ttyUSB0")
    text = edit(text, "board: 1,", "board: 300,")
    text = text + "business:\n  status: maybe\n"
    assert problems(text) == [
        "3: store.timezone: unknown time zone 'Mars/Base' (use an IANA name like Asia/Shanghai)",
        "11: hub.url: environment variable HUB is not set "
        "(set it, or give a default: ${HUB:-value})",
        "15: devices.0.port: missing required key 'port'",
        "17: devices.0.prot: unknown key 'prot' (did you mean 'port'?)",
        "24: doors.0.lock.board: must be at most 255, got 300",
        "28: business.status: expected 'open' or 'closed', got 'maybe'",
    ]


def test_secret_values_are_not_echoed(problems: Problems) -> None:
    text = edit(BASE, "token: tok-0123456789abcdef", "token: [s3cr3t]")
    [problem] = problems(text)
    assert problem == "11: hub.token: expected text, got a list"
    text = edit(BASE, "token: tok-0123456789abcdef", "token: 918273645")
    [problem] = problems(text)
    assert "918273645" not in problem


def test_not_a_mapping_empty_and_not_utf8(store_dir: Path) -> None:
    file = store_dir / "agent.yaml"
    for content, expected in [
        (b"", "1: -: the file holds no settings"),
        (b"# only a comment\n", "1: -: the file holds no settings"),
        (
            b"- a\n- b\n",
            "1: -: the top level must be a mapping of settings (key: value lines)",
        ),
        (b"store:\n  name: \xff\n", "2: -: not UTF-8 text (byte 0xff); save the file as UTF-8"),
    ]:
        file.write_bytes(content)
        with pytest.raises(ConfigError) as e:
            load_config(file, environ={})
        assert [str(p) for p in e.value.problems] == [f"{file}:{expected}"]


def test_check_config_main(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = store_dir / "agent.yaml"
    file.write_text(BASE)
    assert check_config_main(file) == 0
    assert capsys.readouterr().out == "ok\n"

    file.write_text(edit(BASE, "scanner: scan", "scanner: nope"))
    assert check_config_main(file) == 2
    assert capsys.readouterr().out == (
        f"{file}:25: doors.0.scanner: no device 'nope' (devices: bus, scan)\n"
    )

    missing = store_dir / "missing.yaml"
    assert check_config_main(missing) == 2
    assert capsys.readouterr().out == f"{missing}:0: -: cannot read: No such file or directory\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_check_config_unreadable_file(store_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = store_dir / "agent.yaml"
    file.write_text(BASE)
    file.chmod(0)
    assert check_config_main(file) == 2
    assert capsys.readouterr().out == f"{file}:0: -: cannot read: Permission denied\n"
