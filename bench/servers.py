"""The servers a run measures: the API and the constant-JSON framework floor, each under
gunicorn with the production config; the tokens and the plain GET they are called with."""

import http.client
import subprocess
import sys
import time
from pathlib import Path

import jwt

from plan import DATA_DIR, REPO, SECRET
from processes import free_port


def start_gunicorn(app_spec, env, log=None, args=()):
    """Start gunicorn on app_spec with the production config (gunicorn.conf.py, read from
    the repository root) and any further `args`, its output in `log`; return (process,
    port) once it answers."""
    port = free_port()
    log = log or DATA_DIR / f"gunicorn-{app_spec.replace(':', '-')}.log"  # a JSON line a request
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn, app_spec, "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [*command, *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            get(port, "/", None)
            return server, port
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"gunicorn {app_spec} did not start; see {log}")


def stop(server):
    """Terminate a server (a gunicorn master, PgBouncer) and wait for it."""
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()


def mint_token(user_id):
    """An HS256 access token for user_id, valid for an hour."""
    claims = {"sub": user_id, "type": "access", "exp": int(time.time()) + 3600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def get(port, path, credential, timeout=30):
    """One GET on a fresh connection; return (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
