"""The run folder and the generic control routes."""

from __future__ import annotations

import json
import os

from tests.support.sim import SimHandle


def test_devices_json_names_every_demo_device_and_symlinks_point_at_them(sim: SimHandle) -> None:
    devices = json.loads((sim.dir / "devices.json").read_text())
    assert {"lockbus-1", "scanner-front", "vending-1"} <= set(devices)
    assert devices["vending-1"]["kind"] == "vending"
    for device_id, entry in devices.items():
        if entry["kind"] == "printer":  # on TCP: tests/sim/test_printer.py
            continue
        assert entry["port"] is None
        assert entry["path"].startswith("/dev/pts/")
        assert os.readlink(sim.link(device_id)) == entry["path"]
        assert os.path.exists(entry["path"])
    assert devices["lockbus-1"]["kind"] == "lockbus"
    assert devices["scanner-front"]["kind"] == "scanner"
    assert devices["lockbus-1"]["path"] != devices["scanner-front"]["path"]
    assert sim.get("/devices") == devices


def test_control_json_names_the_port_actually_listening(sim: SimHandle) -> None:
    control = json.loads((sim.dir / "control.json").read_text())
    assert control["host"] == "127.0.0.1"
    assert control["port"] > 0
    assert sim.control_url.endswith(f":{control['port']}")


def test_unknown_ids_and_routes_are_404_json(sim: SimHandle) -> None:
    for method, path, body in [
        ("POST", "/scanners/nope/scan", {"code": "x"}),
        ("POST", "/scanners/lockbus-1/scan", {"code": "x"}),  # not a scanner
        ("GET", "/lockbus/scanner-front", None),
        ("GET", "/lockbus/nope/frames", None),
        ("POST", "/lockbus/lockbus-1/boards/9/mute", {"on": True}),
        ("POST", "/lockbus/lockbus-1/boards/two/mute", {"on": True}),
        ("POST", "/lockbus/lockbus-1/boards/2/channels/13/contact", {"open": True}),
        ("POST", "/doors/back/contact", {"open": True}),
        ("POST", "/devices/nope/unplug", {"seconds": 1}),
        ("GET", "/no/such/route", None),
    ]:
        status, reply = sim.request(method, path, body)
        assert status == 404, (path, reply)
        assert isinstance(reply["error"], str) and reply["error"], path


def test_bad_bodies_are_400_with_the_reason(sim: SimHandle) -> None:
    cases = [
        ("/scanners/scanner-front/scan", {}, "code"),
        ("/scanners/scanner-front/scan", {"code": ""}, "code"),
        ("/scanners/scanner-front/scan", {"code": 12}, "code"),
        ("/scanners/scanner-front/scan", {"code": "a\r\nb"}, "one line"),
        ("/scanners/scanner-front/scan", {"code": "a", "extra": 1}, "extra"),
        ("/doors/front/contact", {"open": "yes"}, "open"),
        ("/doors/front/contact", [True], "object"),
        ("/lockbus/lockbus-1/boards/1/mute", {"on": 1}, "on"),
        ("/lockbus/lockbus-1/noise", {"hex": "zz"}, "hex"),
        ("/devices/scanner-front/unplug", {"seconds": -1}, "seconds"),
    ]
    for path, body, mentions in cases:
        status, reply = sim.request("POST", path, body)
        assert status == 400, (path, body, reply)
        assert mentions in reply["error"], (path, reply)


def test_a_body_that_is_not_json_is_400(sim: SimHandle) -> None:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        sim.control_url + "/doors/front/contact", data=b"{open", method="POST"
    )
    try:
        urllib.request.urlopen(req, timeout=5)
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
        assert "not JSON" in json.loads(exc.read())["error"]
    else:
        raise AssertionError("accepted a body that is not JSON")
