"""Listen addresses: `--web.listen-address` parsing, and what to say when one cannot be bound."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str | None
    port: int

    def url(self, actual_port: int | None = None, scheme: str = "http") -> str:
        host = self.host or "localhost"
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{actual_port if actual_port is not None else self.port}"


class CannotListen(Exception):
    """A listen address could not be bound; the message names it, why, and a likely cause."""

    def __init__(self, address: ListenAddress, exc: OSError) -> None:
        self.address = address
        self.errno = exc.errno
        # aiohttp's strerror repeats the address; the system's words for the errno do not.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = listen_hint(exc.errno, address)
        super().__init__(
            f"cannot listen on {address.url()}: {reason}" + (f" ({hint})" if hint else "")
        )


def listen_hint(code: int | None, address: ListenAddress) -> str:
    """The likely cause of a failed bind, in an operator's words ("" when there is no guess)."""
    if code == errno.EADDRINUSE:
        return (
            f"another program, perhaps another exporter, has port {address.port}: "
            f"`ss -ltnp 'sport = :{address.port}'` shows which; "
            "stop it or pick another port with --web.listen-address"
        )
    if code == errno.EADDRNOTAVAIL:
        return (
            f"{address.host} is not an address of this machine; "
            f"try :{address.port} for every interface"
        )
    if code == errno.EACCES:
        return "ports below 1024 need root or CAP_NET_BIND_SERVICE; pick a higher port"
    return ""


def parse_listen_address(value: str) -> ListenAddress:
    """`HOST:PORT`, `:PORT` (every interface) or `[IPv6]:PORT`."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"invalid listen address {value!r}: expected HOST:PORT or :PORT")
    host = host.strip("[]")
    return ListenAddress(host or None, int(port_text))
