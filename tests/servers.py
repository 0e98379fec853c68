"""Real gunicorn and nginx processes for tests that speak HTTP."""

import os
import shutil
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
NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()), None
)


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


@contextmanager
def running_nginx(directory, upstreams):
    """nginx with deploy/nginx.conf as shipped but for its upstream block's servers, which are
    `upstreams` (host:port each), and the port it listens on; yields its base URL."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    site = (REPO / "deploy" / "nginx.conf").read_text()
    servers = "\n    ".join(f"server {upstream};" for upstream in upstreams)
    site = site.replace("server 127.0.0.1:8000;", servers)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / sub).mkdir(mode=0o777)
        (directory / sub).chmod(0o777)  # nginx's workers may run as nobody
    (directory / "apertur.conf").write_text(site)
    (directory / "nginx.conf").write_text(f"""
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {directory}/apertur.conf;
}}
""")
    process = subprocess.Popen(
        [NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(f"nginx exited: {(directory / 'error.log').read_text()}")
            try:
                requests.get(base + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail("nginx did not start")
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(10)
