"""What a request to the API can end in besides an answer: the errors the client raises.

The message of an error never holds the token: API text enters only through `api_error`, which
redacts, escapes and bounds it (exporter/redact.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.redact import CODE_LIMIT, REQUEST_ID_LIMIT, Redactor

# The version the API asks for is API text: shown bounded (a version is a few characters).
VERSION_LIMIT = 40


class ApiError(Exception):
    """A request that did not give a usable answer."""

    def __init__(
        self,
        endpoint: str,
        message: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        required_version: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        # X-OnePin-Required-Version of the answer, if any (clean: see api_error).
        self.required_version = required_version
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [self.endpoint + ":"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(self.code)
        parts.append(self.message)
        if self.request_id:
            parts.append(f"(request_id {self.request_id})")
        return " ".join(parts)

    @property
    def unauthorized(self) -> bool:
        return self.status in (401, 403)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def upgrade_required(self) -> bool:
        """426: the API refuses this client as too old."""
        return self.status == 426


class DeadlineExceeded(ApiError):
    pass


class BudgetDeferred(ApiError):
    """Not sent: the workspace's request budget (http.max_requests_per_minute) is spent; the
    data it would refresh is kept and the request waits for a later poll."""


class UnusableResponse(ApiError):
    """A JSON answer in a shape or with a field value that could not be read."""


class Retryable(Exception):
    """An error worth another try (exporter/retry.py), after `wait` s if the API named it."""

    def __init__(self, error: ApiError, wait: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


def api_error(
    redactor: Redactor,
    endpoint: str,
    message: str,
    status: int | None = None,
    code: str | None = None,
    request_id: str | None = None,
    kind: type[ApiError] = ApiError,
    required_version: str | None = None,
) -> ApiError:
    """An ApiError from API text: the one place where that text enters the exporter, so it is
    redacted, escaped and bounded here, and every sink sees it so."""
    clean = redactor.clean
    return kind(
        endpoint,
        clean(message),
        status,
        clean(code, CODE_LIMIT) if code else None,
        clean(request_id, REQUEST_ID_LIMIT) if request_id else None,
        clean(required_version, VERSION_LIMIT) if required_version else None,
    )


def status_text(status: int, headers: Mapping[str, str]) -> str:
    """What an error answer without a readable message is called."""
    if 300 <= status < 400:
        return "unexpected redirect (not followed)"
    kind = headers.get("content-type", "").split(";")[0] or "no content type"
    return f"error response ({kind})"
