"""The peer of the hub's HTTP figures: an aiohttp hello-world in its own process, as the
hub is. It answers any POST with a short JSON body after reading the request's body, and
does nothing else, so the same client sending the same signed pushes at it measures what
aiohttp and the machine cost per request (bench/hub.py)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator


def serve(port: int) -> None:
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"data": "ok"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hello)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


@contextlib.contextmanager
def hello_server() -> Iterator[tuple[str, int]]:
    """(url, pid) of a hello-world server running until the block ends."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, str(port)])
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the hello-world server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
