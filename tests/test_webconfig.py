"""TLS on loopback, for real: --web.config.file (TLS, mTLS and basic auth on /metrics), and the
client's verification of the API's certificate (http.ca_file, http.insecure_skip_verify)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import select
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from aiohttp import web

from exporter.client import ApiError, Deadline, OnePinClient
from exporter.config import ConfigError
from exporter.connections import ServerLimits
from exporter.webconfig import load_web_config
from tests.background import BackgroundExporter
from tests.fakeapi import TOKEN, FakeOnePin, standard_workspace
from tests.helpers import make_config, require_binary, value
from tests.procs import Prometheus

PASSWORD = "correct horse battery staple"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=d)  # fmt: skip
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                      ("client", "extendedKeyUsage=clientAuth")):  # fmt: skip
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                "-out", f"{name}.crt", cwd=d)  # fmt: skip
    return d


def web_config(pki: Path, extra_tls: str = "") -> Path:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path = pki / "web.yml"
    path.write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"{extra_tls}basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    return path


@pytest.fixture
def secured(pki: Path) -> Iterator[str]:
    fake = FakeOnePin(standard_workspace())
    config = load_web_config(web_config(pki))
    with BackgroundExporter(make_config(), transport=fake.transport(), web_config=config) as e:
        yield e.url


def fetch(
    url: str, ca: Path, user: str | None = None, password: str = PASSWORD,
    cert: tuple[Path, Path] | None = None,
) -> tuple[int, str]:  # fmt: skip
    context = ssl.create_default_context(cafile=str(ca))
    if cert:
        context.load_cert_chain(*cert)
    headers = {}
    if user:
        headers["Authorization"] = (
            "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        )
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, context=context, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_need_tls_and_the_right_password(secured: str, pki: Path) -> None:
    assert secured.startswith("https://127.0.0.1:")
    status, body = fetch(f"{secured}/metrics", pki / "ca.crt", "prometheus")
    assert status == 200 and value(body, "onepin_up") == 1
    assert fetch(f"{secured}/metrics", pki / "ca.crt", "prometheus", "wrong")[0] == 401
    assert fetch(f"{secured}/metrics", pki / "ca.crt", "intruder")[0] == 401
    assert fetch(f"{secured}/metrics", pki / "ca.crt")[0] == 401
    assert fetch(f"{secured}/", pki / "ca.crt")[0] == 401
    # Health checks answer without credentials (probes), still over TLS.
    assert fetch(f"{secured}/-/healthy", pki / "ca.crt")[0] == 200
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is refused
        urllib.request.urlopen(secured.replace("https", "http") + "/metrics", timeout=10)


def test_mtls_requires_a_client_certificate_signed_by_the_ca(pki: Path) -> None:
    path = web_config(
        pki, "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
    )
    fake = FakeOnePin(standard_workspace())
    with BackgroundExporter(make_config(), transport=fake.transport(),
                            web_config=load_web_config(path)) as e:  # fmt: skip
        client = (pki / "client.crt", pki / "client.key")
        assert fetch(f"{e.url}/metrics", pki / "ca.crt", "prometheus", cert=client)[0] == 200
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            fetch(f"{e.url}/metrics", pki / "ca.crt", "prometheus")


def test_bad_web_config_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(
        "tls_server_config: {cert_file: missing.crt, key_file: missing.key, min_version: TLS10}\n"
        "basic_auth_users: {bob: plaintext, eve: $2y$10$cut.short, mallory: $2y$99$"
        + "a" * 53
        + "}\nextra: 1\n"
    )
    with pytest.raises(ConfigError) as err:
        load_web_config(path)
    text = "\n".join(err.value.problems)
    assert "extra: unknown key" in text
    assert "min_version: expected TLS12 or TLS13" in text
    assert "cert_file/key_file: cannot load" in text
    assert "basic_auth_users.bob: expected a bcrypt hash" in text
    # Malformed hashes are refused here, not found out by bcrypt at the first scrape (a 500).
    assert "basic_auth_users.eve: expected a bcrypt hash" in text
    assert "basic_auth_users.mallory: expected a bcrypt hash" in text
    with pytest.raises(ConfigError, match="cannot read web config"):
        load_web_config(tmp_path / "none.yml")


def test_real_prometheus_scrapes_over_tls_with_basic_auth(
    secured: str, pki: Path, tmp_path: Path
) -> None:
    binary = require_binary("prometheus")
    prometheus = Prometheus(binary, tmp_path, {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{
            "job_name": "onepin-tls",
            "scheme": "https",
            "tls_config": {"ca_file": str(pki / "ca.crt")},
            "basic_auth": {"username": "prometheus", "password": PASSWORD},
            "static_configs": [{"targets": [secured.removeprefix("https://")]}],
        }, {
            "job_name": "onepin-wrong-password",
            "scheme": "https",
            "tls_config": {"ca_file": str(pki / "ca.crt")},
            "basic_auth": {"username": "prometheus", "password": "wrong"},
            "static_configs": [{"targets": [secured.removeprefix("https://")]}],
        }],
    })  # fmt: skip
    try:
        assert prometheus.wait_query('up{job="onepin-tls"} == 1')
        assert prometheus.wait_query('onepin_up{job="onepin-tls"} == 1')
        assert prometheus.wait_query('up{job="onepin-wrong-password"} == 0')
    finally:
        prometheus.stop()


@pytest.mark.parametrize(
    ("http", "reachable"),
    [
        ("{{ca_file: '{ca}'}}", True),  # the API's private CA, as configured
        ("{{}}", False),  # the system trust store does not know it
        ("{{insecure_skip_verify: true}}", True),
    ],
    ids=["ca_file", "system-roots", "insecure_skip_verify"],
)
def test_the_client_verifies_the_api_certificate_against_http_ca_file(
    pki: Path, http: str, reachable: bool
) -> None:
    """The client's own transport (aiohttp) over real TLS: `http.ca_file` and
    `http.insecure_skip_verify` reach it, and an unknown CA is refused, not trusted."""

    async def workflows(request: web.Request) -> web.Response:
        # Bodies are asked for as sent: the size limit then holds for what is kept.
        assert request.headers.get("Accept-Encoding", "identity") == "identity"
        body = {"data": [{"id": "wf-1", "name": "tls"}], "pagination": {"total": 1, "limit": 100}}
        return web.json_response(body)

    async def run() -> str:
        app = web.Application()
        app.router.add_get("/api/v1/workflows", workflows)
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(pki / "server.crt", pki / "server.key")
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls)
        await site.start()
        port = runner.addresses[0][1]
        config = make_config(
            api_url=f"https://127.0.0.1:{port}", http=http.format(ca=pki / "ca.crt")
        )
        ws = config.workspaces[0]
        client = OnePinClient(ws.api_url, ws.token, config.http)
        try:
            catalogue = await client.list_workflows(Deadline(10))
            return ",".join(wf.name for wf in catalogue.workflows)
        except ApiError as exc:
            return f"error: {exc}"
        finally:
            await client.aclose()
            await runner.cleanup()

    outcome = asyncio.run(run())
    if reachable:
        assert outcome == "tls"
    else:
        assert outcome.startswith("error: list_workflows: connection failed"), outcome
        assert "CERTIFICATE_VERIFY_FAILED" in outcome, outcome
        assert TOKEN not in outcome


def test_a_tls_handshake_that_never_starts_is_closed(pki: Path) -> None:
    """A client that connects and sends no ClientHello must not hold the connection for long."""
    config = dataclasses.replace(
        load_web_config(web_config(pki)), limits=ServerLimits(idle_timeout=0.5)
    )
    fake = FakeOnePin(standard_workspace())
    with BackgroundExporter(make_config(), transport=fake.transport(), web_config=config) as e:
        host, port = e.url.removeprefix("https://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            started = time.monotonic()
            readable, _, _ = select.select([sock], [], [], 5)
            assert readable and sock.recv(1) == b"", "still open 5 s after connecting"
            assert time.monotonic() - started < 5
