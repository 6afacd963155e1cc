"""Content negotiation for /metrics: the format (`Accept`) and the coding (`Accept-Encoding`).

Written here rather than taken from a library: prometheus_client's `choose_encoder` and
`gzip_accepted` look for the name and ignore q-values (so `q=0` still gets it), aiohttp has no
parser for these headers, and a web framework for two header fields would be a heavy dependency.
Both headers are comma-separated lists of `name;param=value` elements (RFC 9110 §12.4); names and
parameter names are case-insensitive, and a quoted parameter value may hold commas.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

OPENMETRICS = "application/openmetrics-text"
TEXT = "text/plain"
# An element (or a parameter) up to the next comma (semicolon) outside a quoted string.
_ELEMENTS = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')
_PARAMS = re.compile(r'(?:[^;"]|"(?:[^"\\]|\\.)*")+')
# RFC 9110 §12.4.2: 0 to 1, at most three decimals.
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_GZIP_NAMES = ("gzip", "x-gzip")  # x-gzip: the same coding (RFC 9110 §8.4.1.3)


@dataclass(frozen=True, slots=True)
class Preference:
    name: str  # lower case: a coding, or a media range `type/subtype`
    q: float


def parse(header: str) -> list[Preference]:
    """The elements of an Accept or Accept-Encoding value; an element with a bad q is left out."""
    out = []
    for element in _ELEMENTS.findall(header):
        name, *params = (part.strip() for part in _PARAMS.findall(element))
        if not name:
            continue
        q: float | None = 1.0
        for param in params:
            key, _, raw = param.partition("=")
            if key.strip().lower() == "q":
                raw = raw.strip()
                q = float(raw) if _QVALUE.fullmatch(raw) else None
                break  # parameters after q are accept-ext, not the media type's
        if q is not None:
            out.append(Preference(name.lower(), q))
    return out


def _q(prefs: Iterable[Preference], names: Iterable[str]) -> float | None:
    """The highest q given to any of `names`, or None when none of them is listed."""
    wanted = set(names)
    qs = [p.q for p in prefs if p.name in wanted]
    return max(qs) if qs else None


def wants_gzip(accept_encoding: str | None) -> bool:
    """gzip when the client accepts it (q > 0) at least as much as no coding at all.

    No header: no coding (a person with curl). `identity` not listed (nor `*`) is acceptable,
    but only as a fallback: `gzip;q=0.5` alone means gzip."""
    if accept_encoding is None:
        return False
    prefs = parse(accept_encoding)
    star = _q(prefs, ["*"])
    gzip_q = _q(prefs, _GZIP_NAMES)
    gzip_q = gzip_q if gzip_q is not None else (star or 0.0)
    identity_q = _q(prefs, ["identity"])
    identity_q = identity_q if identity_q is not None else star
    return gzip_q > 0 and (identity_q is None or gzip_q >= identity_q)


def _media_q(prefs: list[Preference], media_type: str) -> float:
    """The q of the most specific range that matches `media_type` (RFC 9110 §12.5.1), else 0.

    Media type parameters (`version=`) are not matched: both formats are served in one version.
    """
    kind = media_type.split("/", 1)[0]
    for names in ([media_type], [f"{kind}/*"], ["*/*"]):
        q = _q(prefs, names)
        if q is not None:
            return q
    return 0.0


def wants_openmetrics(accept: str | None) -> bool:
    """OpenMetrics when the client prefers it to the classic text format (a tie: text)."""
    if not accept:
        return False
    prefs = parse(accept)
    openmetrics = _media_q(prefs, OPENMETRICS)
    return openmetrics > 0 and openmetrics > _media_q(prefs, TEXT)
