"""One exchange with the API: the request sent, the few headers used and the body read back,
within MAX_BODY_BYTES as sent and again once its Content-Encoding is undone."""

from __future__ import annotations

import ssl

import httpx

from exporter.apierrors import ApiError
from exporter.bodies import UndecodableBody, codings, decode
from exporter.config import HttpSettings
from exporter.hints import connection_failure
from exporter.transport import AiohttpTransport, BodyTooLarge

MAX_BODY_BYTES = 16 * 1024 * 1024
REQUIRED_VERSION = "x-onepin-required-version"
_WANTED_HEADERS = frozenset(
    {
        b"content-encoding",
        b"content-length",
        b"content-type",
        b"retry-after",
        REQUIRED_VERSION.encode(),
    }
)


def build_ssl_context(settings: HttpSettings) -> ssl.SSLContext | bool:
    if settings.insecure_skip_verify:
        return False
    context = ssl.create_default_context()
    if settings.ca_file:
        context.load_verify_locations(cafile=settings.ca_file)
    return context


def default_transport(settings: HttpSettings) -> httpx.AsyncBaseTransport:
    return AiohttpTransport(
        ssl_context=build_ssl_context(settings),
        max_connections=settings.max_concurrency,
        max_body_bytes=MAX_BODY_BYTES,
    )


async def exchange(
    transport: httpx.AsyncBaseTransport, request: httpx.Request, endpoint: str
) -> tuple[int, dict[str, str], bytes]:
    """The answer's status, the headers the client uses (lower-case names) and its body."""
    response = await transport.handle_async_request(request)
    # Read the few headers used, once (httpx.Headers decodes all on every lookup).
    headers = {
        k.decode("latin-1").lower(): v.decode("latin-1")
        for k, v in response.headers.raw
        if k.lower() in _WANTED_HEADERS
    }
    stream = response.stream
    if isinstance(stream, httpx.ByteStream) and "content-encoding" not in headers:
        # Already in memory (this transport, MockTransport), nothing to decode: httpx's
        # decoding pipeline would only copy it.
        raw = b"".join(stream)
        if len(raw) > MAX_BODY_BYTES:
            raise BodyTooLarge()
        return response.status_code, headers, raw
    try:
        return response.status_code, headers, await read_body(endpoint, response)
    finally:
        await response.aclose()


async def read_body(endpoint: str, response: httpx.Response) -> bytes:
    """The body, its Content-Encoding undone: within MAX_BODY_BYTES as sent, and again once
    decoded (httpx's own decoders would inflate a whole chunk before any check)."""
    try:
        chain = codings(", ".join(response.headers.get_list("content-encoding")))
    except UndecodableBody as exc:
        raise ApiError(endpoint, str(exc)) from None
    if isinstance(response.stream, httpx.ByteStream):
        raw = b"".join(response.stream)  # as sent, even when httpx has decoded a copy
    else:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise BodyTooLarge()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise BodyTooLarge()
            chunks.append(chunk)
        raw = b"".join(chunks)
    if len(raw) > MAX_BODY_BYTES:
        raise BodyTooLarge()
    try:
        return await decode(raw, chain, MAX_BODY_BYTES)
    except BodyTooLarge:
        raise ApiError(
            endpoint,
            f"response body larger than {MAX_BODY_BYTES // 1048576} MiB once decoded "
            f"({', '.join(chain)})",
        ) from None
    except UndecodableBody as exc:
        raise ApiError(endpoint, str(exc)) from None


def no_answer(exc: BaseException, timeout: float, configured: float) -> str:
    """Why no answer came (`timeout` s allowed, http.timeout `configured`), in words that stay
    the same while the problem lasts."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        if timeout < configured:
            return "no answer before the scrape deadline"
        return f"no answer within http.timeout ({timeout:g}s)"
    cause = exc.__cause__
    hinted = connection_failure(cause)
    if hinted:
        return f"connection failed: {hinted}"
    reason = getattr(cause, "strerror", None) or type(cause or exc).__name__
    return f"connection failed: {reason}"
