"""API errors and the OnePin error envelope ``{"error": {code, message, details}, "meta"}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """An error answer of the simulated API."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self, meta: dict[str, str]) -> dict[str, Any]:
        return {
            "error": {"code": self.code, "message": self.message, "details": self.details},
            "meta": meta,
        }

    def framework_body(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The web framework's own 422 body, ``{"detail": [{loc, msg, type, input}]}``, which
        the API answers for parameters that fail its type checks (docs section 2)."""
        return {
            "detail": [
                {
                    "loc": ["query", detail["field"]],
                    "msg": detail["message"],
                    "type": "value_error",
                    "input": query.get(detail["field"]),
                }
                for detail in self.details or ()
            ]
        }


def invalid_api_key() -> ApiError:
    return ApiError(401, "INVALID_API_KEY", "Invalid or missing API key")


def forbidden_workspace() -> ApiError:
    return ApiError(403, "FORBIDDEN", "X-Workspace-Id does not match the API key's workspace")


def not_found(what: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} not found")


def validation_error(details: list[dict[str, str]]) -> ApiError:
    return ApiError(422, "VALIDATION_ERROR", "Request validation failed", details)


def rate_limited(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "RATE_LIMITED",
        "Rate limit exceeded; retry later",
        headers={"Retry-After": str(retry_after)},
    )


def upgrade_required(required: str, headers: dict[str, str]) -> ApiError:
    return ApiError(
        426,
        "UPGRADE_REQUIRED",
        f"This client is older than the minimum supported version {required}; upgrade it",
        headers=headers,
    )


def server_error(status: int) -> ApiError:
    return ApiError(status, "SERVER_ERROR", "Internal server error (simulated)")
