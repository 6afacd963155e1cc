"""`--web.config.file`: TLS and basic auth for /metrics, in the Prometheus exporter-toolkit format.

```yaml
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert   # optional, for mTLS
  client_ca_file: ca.crt
  min_version: TLS12                             # TLS12 (default) or TLS13
basic_auth_users:
  prometheus: $2y$10$...                         # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':')
```
The health endpoints (`/-/healthy`, `/-/ready`) answer without basic auth, so that probes need no
credentials; they reveal nothing. TLS, when configured, covers every endpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml
from aiohttp import web

from exporter.config import ConfigError

UNAUTHENTICATED_PATHS = frozenset({"/-/healthy", "/-/ready"})
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version"}


@dataclass(frozen=True, slots=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)


def load_web_config(path: str | Path) -> WebConfig:
    path = Path(path)
    problems: list[str] = []
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read web config: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: invalid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: expected a mapping at the top level"])
    for key in raw:
        if key not in ("tls_server_config", "basic_auth_users", "http_server_config"):
            problems.append(f"{path}: {key}: unknown key")
    context = _tls(raw.get("tls_server_config"), path, problems)
    users = _users(raw.get("basic_auth_users"), path, problems)
    if problems:
        raise ConfigError(problems)
    return WebConfig(context, users)


def _tls(raw: Any, path: Path, problems: list[str]) -> ssl.SSLContext | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"{path}: tls_server_config: expected a mapping")
        return None
    for key in raw:
        if key not in _TLS_KEYS:
            problems.append(f"{path}: tls_server_config.{key}: unknown key")
    cert, key = raw.get("cert_file"), raw.get("key_file")
    if not cert or not key:
        problems.append(f"{path}: tls_server_config: cert_file and key_file are required")
        return None
    base = path.parent
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    version = raw.get("min_version", "TLS12")
    if version not in _TLS_VERSIONS:
        problems.append(f"{path}: tls_server_config.min_version: expected TLS12 or TLS13")
    else:
        context.minimum_version = _TLS_VERSIONS[version]
    try:
        context.load_cert_chain(base / str(cert), base / str(key))
    except (OSError, ssl.SSLError) as exc:
        problems.append(f"{path}: tls_server_config.cert_file/key_file: cannot load: {exc}")
    auth = raw.get("client_auth_type", "NoClientCert")
    if auth not in _CLIENT_AUTH:
        problems.append(
            f"{path}: tls_server_config.client_auth_type: expected one of {', '.join(_CLIENT_AUTH)}"
        )
        return context
    context.verify_mode = _CLIENT_AUTH[auth]
    client_ca = raw.get("client_ca_file")
    if client_ca:
        try:
            context.load_verify_locations(cafile=base / str(client_ca))
        except (OSError, ssl.SSLError) as exc:
            problems.append(f"{path}: tls_server_config.client_ca_file: cannot load: {exc}")
    elif auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        problems.append(f"{path}: tls_server_config.client_ca_file: required by {auth}")
    return context


def _users(raw: Any, path: Path, problems: list[str]) -> dict[str, bytes]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{path}: basic_auth_users: expected a mapping of user to bcrypt hash")
        return {}
    users = {}
    for user, hashed in raw.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            problems.append(f"{path}: basic_auth_users.{user}: expected a bcrypt hash")
            continue
        users[str(user)] = hashed.encode()
    return users


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def basic_auth_middleware(users: dict[str, bytes]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Require one of `users` on every path but the health checks.

    bcrypt is slow on purpose (tens of ms); a successful check is remembered by a salted digest
    of the credentials, so a scrape every few seconds does not spend a core on it.
    """
    salt = hashlib.sha256(repr(sorted(users.items())).encode()).digest()
    verified: set[bytes] = set()

    def check(header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = users.get(user)
        if not sep or hashed is None:
            return False
        key = hmac.new(salt, f"{user}:{password}".encode(), "sha256").digest()
        if key in verified:
            return True
        if bcrypt.checkpw(password.encode(), hashed.replace(b"$2y$", b"$2b$", 1)):
            if len(verified) < 1024:
                verified.add(key)
            return True
        return False

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in UNAUTHENTICATED_PATHS:
            return await handler(request)
        if check(request.headers.get("Authorization", "")):
            return await handler(request)
        return web.Response(
            status=401,
            text="Unauthorized\n",
            headers={"WWW-Authenticate": 'Basic realm="onepin-exporter"'},
        )

    return middleware
