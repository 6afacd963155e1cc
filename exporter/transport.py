"""The default HTTP transport: aiohttp's connection pool and parser under the httpx API.

The client speaks httpx (`httpx.Request` in, `httpx.Response` out), so tests can hand it any
httpx transport (respx, `httpx.MockTransport`). In production the requests are small GETs with
JSON answers, many per poll; this transport does only what those need: one keep-alive pool, the
body read whole (within a size limit), no redirects, cookies or proxies, and no per-request
timers, because the client bounds each exchange itself. The README has the measurements.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import httpx
from yarl import URL

_NO_ACCEPT_ENCODING = frozenset({"Accept-Encoding"})


class BodyTooLarge(Exception):
    """The response body is larger than the transport's limit."""


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, *, ssl_context: ssl.SSLContext | bool, max_connections: int, max_body_bytes: int
    ) -> None:
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._max_body = max_body_bytes
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl)
        # No session-wide timeout: the client bounds every exchange with its own deadline.
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(),
            auto_decompress=False,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        try:
            async with session.request(
                request.method,
                URL(str(request.url), encoded=True),  # httpx has checked it: no second parse
                headers=request.headers.multi_items(),
                data=request.content or None,
                allow_redirects=False,
                # Bodies as sent: the client asks for identity (JSON of a few kB is not worth
                # compressing) and decodes one compressed anyway itself, within its size limit
                # (exporter/bodies.py); aiohttp's default would ask for gzip and deflate.
                skip_auto_headers=_NO_ACCEPT_ENCODING,
            ) as response:
                declared = response.content_length
                if declared is not None and declared > self._max_body:
                    raise BodyTooLarge()
                body = await (response.read() if declared is not None else self._read(response))
                # A stream, not content=: httpx would copy and decode the body once more.
                return httpx.Response(
                    response.status,
                    headers=response.raw_headers,
                    stream=httpx.ByteStream(body),
                    request=request,
                )
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc.os_error
        except aiohttp.ServerTimeoutError as exc:
            raise httpx.ReadTimeout(str(exc), request=request) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        parts: list[bytes] = []
        size = 0
        while chunk := await response.content.readany():
            size += len(chunk)
            if size > self._max_body:
                raise BodyTooLarge()
            parts.append(chunk)
        return b"".join(parts)

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
            # Let the connections' closing callbacks run before the loop goes away.
            await asyncio.sleep(0)
