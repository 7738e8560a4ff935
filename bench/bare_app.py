"""The baseline for the memory benchmark: a bare Flask app with one JSON route."""

from flask import Flask

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
