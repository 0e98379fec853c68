"""The framework floor for `make bench`: Flask under gunicorn answering one constant JSON body."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def constant():
    """A small fixed JSON document: what a request costs with no auth and no database."""
    return {"status": "ok", "items": [1, 2, 3]}
