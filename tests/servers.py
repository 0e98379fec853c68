"""Real gunicorn processes for tests that speak HTTP."""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.conftest import TEST_SECRET

REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
START_TIMEOUT = 15.0


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_gunicorn(log, *, workers=2, args=(), ready=lambda process: True, **settings):
    """`gunicorn wsgi:app` on a free port, with the test secret and default DB_* settings
    unless `settings` say otherwise; yields (base URL, master process).

    Both output streams go to `log`. Startup waits until the server answers and
    `ready(process)` holds, and fails the test with the log if it does not in time.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "JWT_"))}
    env.update({"JWT_SECRET_KEY": TEST_SECRET, "JWT_ALGORITHM": "HS256", **settings})
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                str(GUNICORN),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                *args,
                "wsgi:app",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
            try:
                requests.get(f"{base}/api/v1/stats", timeout=0.5)
                if ready(process):
                    break
            except (requests.ConnectionError, requests.Timeout):  # still booting
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn not ready within {START_TIMEOUT}s:\n{log.read_text()}")
            time.sleep(0.1)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
