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

import asyncio
import base64
import binascii
import hmac
import os
import re
import secrets
import ssl
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml
from aiohttp import web
from aiohttp.typedefs import Middleware

from exporter.config import ConfigError
from exporter.connections import ServerLimits

UNAUTHENTICATED_PATHS = frozenset({"/-/healthy", "/-/ready"})
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# `$2y$10$` + 22 characters of salt + 31 of hash, in bcrypt's base64 alphabet.
_BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version"}


@dataclass(frozen=True, slots=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    limits: ServerLimits = field(default_factory=ServerLimits)


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
        if not isinstance(hashed, str) or not _BCRYPT_HASH.fullmatch(hashed):
            problems.append(
                f"{path}: basic_auth_users.{user}: expected a bcrypt hash ($2y$, $2b$ or $2a$, "
                "cost 04 to 31, 53 more characters), as htpasswd -nBC 10 makes"
            )
            continue
        users[str(user)] = hashed.encode()
    return users


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# bcrypt reads at most 72 bytes of a password: a longer one is refused, not cut short (else any
# suffix would do).
MAX_PASSWORD_BYTES = 72
# bcrypt releases the GIL: checks run here, off the event loop, at most a core or so at a time so
# that a flood of wrong passwords queues up here instead of taking every core from the scrapes.
_BCRYPT = ThreadPoolExecutor(
    max_workers=max(1, (os.cpu_count() or 2) // 2), thread_name_prefix="bcrypt"
)
_VERIFIED_MAX = 1024


class BasicAuth:
    """Checks `Authorization: Basic` against the bcrypt hashes of `users`.

    - bcrypt runs in a small thread pool, never on the event loop.
    - An unknown user is checked against a dummy hash of the highest cost configured, so that
      the time of a 401 does not tell which user names exist.
    - A successful check is remembered, keyed by an HMAC (with a key made at start and kept only
      in memory) of the hash, the user and the password, so that a scrape every few seconds does
      not spend a core on bcrypt. Only successes: a wrong password costs a bcrypt check each
      time, and the memory holds no password, nor anything that tests one without the key.
    """

    def __init__(self, users: dict[str, bytes]) -> None:
        # The `$2y$` of htpasswd is the same algorithm as `$2b$`, which is all bcrypt accepts.
        self._users = {user: _as_2b(hashed) for user, hashed in users.items()}
        cost = max((_cost(hashed) for hashed in self._users.values()), default=10)
        self._dummy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=cost))
        self._key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()

    async def allows(self, header: str) -> bool:
        credentials = _credentials(header)
        if credentials is None:
            return False
        user, password = credentials
        if len(password) > MAX_PASSWORD_BYTES:
            return False
        hashed = self._users.get(user)
        key = hmac.new(self._key, b"\n".join((hashed or b"", user.encode(), password)), "sha256")
        if hashed is not None and key.digest() in self._verified:
            return True
        loop = asyncio.get_running_loop()
        matches = await loop.run_in_executor(
            _BCRYPT, bcrypt.checkpw, password, hashed or self._dummy
        )
        if not matches or hashed is None:
            return False
        if len(self._verified) < _VERIFIED_MAX:
            self._verified.add(key.digest())
        return True


def _credentials(header: str) -> tuple[str, bytes] | None:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password.encode()) if sep else None


def _as_2b(hashed: bytes) -> bytes:
    return b"$2b$" + hashed[4:] if hashed.startswith(b"$2y$") else hashed


def _cost(hashed: bytes) -> int:
    return int(hashed[4:6])


def basic_auth_middleware(users: dict[str, bytes]) -> Middleware:
    """Require one of `users` on every path but the health checks."""
    auth = BasicAuth(users)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in UNAUTHENTICATED_PATHS:
            return await handler(request)
        if await auth.allows(request.headers.get("Authorization", "")):
            return await handler(request)
        return web.Response(
            status=401,
            text="Unauthorized\n",
            headers={"WWW-Authenticate": 'Basic realm="onepin-exporter"'},
        )

    return middleware
