"""Why a connection to the API failed, in words that name the likely cause."""

from __future__ import annotations

import ssl


def connection_failure(cause: BaseException | None) -> str | None:
    """A reason with a hint for the failures whose bare text misleads; None for the others."""
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (
            f"{cause.strerror or cause}: the API's TLS certificate is not signed by a CA this "
            "machine trusts (a TLS-intercepting proxy, or a private CA?): set http.ca_file to "
            "that CA's certificate"
        )
    if isinstance(cause, ssl.SSLError) and cause.reason == "WRONG_VERSION_NUMBER":
        return (
            f"TLS handshake failed ([SSL: {cause.reason}]): the server answered in plain HTTP, not "
            "TLS; is api_url https:// for a plain-HTTP port? Use http:// there"
        )
    return None
