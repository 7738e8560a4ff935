"""The nginx example in deploy/: its settings agree with the app (every upload fits the body size
of its location, the forwarded headers are the ones ProxyFix reads), and, where Debian's nginx is
installed (``scripts/ensure-chromium`` installs it in CI), ``nginx -t`` accepts it and real
requests pass through it to a gunicorn serving the portal."""

import datetime as dt
import http.client
import json
import os
import re
import shutil
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.payments import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "nginx-portal.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
BIN = Path(sys.executable).parent
HOST = "tanhui.example.cn"


def _size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmM]?)", text).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit.lower()]


def _locations(conf: str) -> dict[str, str]:
    """Each location's block text (``= /verify`` → its body), and the server's own as ``""``."""
    server = conf[conf.index("listen 443") :]
    found = {"": server}
    for match in re.finditer(r"location\s+(=\s*)?(\S+)\s*\{([^}]*)\}", server):
        found[("= " if match.group(1) else "") + match.group(2)] = match.group(3)
    return found


def _body_size_for(path: str, locations: dict[str, str]) -> int:
    """nginx's client_max_body_size for ``path``: an exact location, else the longest prefix."""
    server_size = _size(re.search(r"^\s*client_max_body_size (\S+);", locations[""], re.M).group(1))
    block = locations.get(f"= {path}")
    if block is None:
        prefixes = [p for p in locations if p and not p.startswith("=") and path.startswith(p)]
        block = locations[max(prefixes, key=len)] if prefixes else None
    match = re.search(r"client_max_body_size (\S+);", block or "")
    return _size(match.group(1)) if match else server_size


def test_every_upload_fits_its_location_and_the_proxy_headers_are_set(app):
    conf = EXAMPLE.read_text()
    locations = _locations(conf)
    default = app.config["MAX_CONTENT_LENGTH"]
    checked = 0
    for rule in app.url_map.iter_rules():
        limit = getattr(app.view_functions[rule.endpoint], "body_limit", None)
        if limit is None or not (rule.methods & {"POST", "PUT", "PATCH"}):
            continue
        path = re.sub(r"<[^>]+>", "x", rule.rule)
        assert _body_size_for(path, locations) >= limit, (rule.rule, limit)
        checked += 1
    assert checked >= 8
    assert _body_size_for("/api/v1/orders", locations) >= default
    server = locations[""]
    for setting in (
        "proxy_set_header Host $host;",
        "proxy_set_header X-Forwarded-For $remote_addr;",  # set, never appended to: nginx is the edge
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_read_timeout",
        "proxy_connect_timeout",
        "client_body_timeout",
    ):
        assert setting in server, setting
    assert re.search(r"location = /metrics \{\s*return 404;", conf)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def proxied(tmp_path, sqlite_template):
    """gunicorn serving the portal (PORTAL_PROXY_FIX_X_FOR=1) behind the example, run by nginx."""
    if not os.path.exists(NGINX):
        pytest.skip(f"{NGINX} is missing: scripts/ensure-chromium installs it (CI does)")
    shutil.copy(sqlite_template, tmp_path / "portal.db")
    app_port, http_port, https_port = free_port(), free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "PROMETHEUS_"))},
        "PORTAL_INSTANCE_PATH": str(tmp_path),
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path}/portal.db",
        "PORTAL_SECRET_KEY": "test",
        "PORTAL_LOG_LEVEL": "WARNING",
        "PORTAL_JOBS_URL": "memory:",
        "PORTAL_PROXY_FIX_X_FOR": "1",
        "PORTAL_BASE_URL": f"https://{HOST}",
    }
    gunicorn = subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{app_port}", "portal:create_app()"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cert, key = _self_signed(tmp_path)
    site = (
        EXAMPLE.read_text()
        .replace("server 127.0.0.1:8000", f"server 127.0.0.1:{app_port}")
        .replace("listen 80;", f"listen 127.0.0.1:{http_port};")
        .replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
        .replace("/etc/ssl/portal/fullchain.pem", str(cert))
        .replace("/etc/ssl/portal/privkey.pem", str(key))
    )
    (tmp_path / "portal.conf").write_text(site)
    (tmp_path / "logs").mkdir()
    main = f"""
{"user root;" if os.geteuid() == 0 else ""}
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    include {tmp_path}/portal.conf;
}}
"""
    (tmp_path / "nginx.conf").write_text(main)
    command = [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    nginx = subprocess.Popen(
        [*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            connection = http.client.HTTPConnection("127.0.0.1", app_port, timeout=60)
            try:
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("gunicorn did not start")
                time.sleep(0.1)
            finally:
                connection.close()
        yield {"http": http_port, "https": https_port, "database": tmp_path / "portal.db"}
    finally:
        stop(nginx)
        stop(gunicorn)


def _https(port, method, path, body=None, headers=None):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=60, context=context)
    try:
        connection.request(method, path, body=body, headers={"Host": HOST, **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_requests_pass_through_nginx_as_the_portal_needs(proxied):
    # The scheme and host the client used reach the app (links it builds are https on its name);
    # a client's own X-Forwarded-For is not believed.
    status, headers, body = _https(
        proxied["https"], "GET", "/api/v1/signing-keys", headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert status == 200, body[:300]
    assert json.loads(body)["document_signing"]["chain_url"] == f"https://{HOST}/api/v1/signing-chain.pem"
    status, headers, body = _https(
        proxied["https"],
        "POST",
        "/api/v1/estimates",
        body=b'{"kind": "event"}',
        headers={"X-Forwarded-For": "203.0.113.9", "Content-Type": "application/json"},
    )
    assert status == 400 and headers["RateLimit-Limit"], body[:300]
    with sqlite3.connect(proxied["database"]) as conn:
        keys = [row[0] for row in conn.execute("SELECT key FROM throttle_counters")]
    assert keys == ["api:address:127.0.0.1"]
    # Plain HTTP is sent to HTTPS; a body over the location's size never reaches a worker;
    # /metrics is not served to the world.
    connection = http.client.HTTPConnection("127.0.0.1", proxied["http"], timeout=30)
    try:
        connection.request("GET", "/catalog", headers={"Host": HOST})
        response = connection.getresponse()
        assert response.status == 301 and response.getheader("Location") == f"https://{HOST}/catalog"
    finally:
        connection.close()
    status, _headers, _body = _https(
        proxied["https"], "POST", "/api/v1/orders", body=b"x" * (2 * 1024 * 1024)
    )
    assert status == 413
    assert _https(proxied["https"], "GET", "/metrics")[0] == 404
    assert _https(proxied["https"], "GET", "/readyz")[0] == 200
