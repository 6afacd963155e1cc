"""GET requests kept built between polls, for the URLs asked poll after poll (the catalogue's
pages, the status of each active run).

httpx checks every character of a URL and normalises every header, which costs more CPU than
the rest of an exchange, so such a request is built once. It is kept from the second poll in a
row that asks for it: a cold start asks once for the status of each workflow's latest run, and
at 20,000 workflows those requests, kept, held about 30 MB. What the last two polls did not ask
for is let go (runs that ended); everything is let go when the token changes (a token file may
be rewritten).
"""

from __future__ import annotations

import httpx

# A request's path and query.
Key = tuple[str, tuple[tuple[str, str], ...]]


class KeptRequests:
    def __init__(self) -> None:
        self._kept: dict[Key, httpx.Request] = {}
        self._kept_before: dict[Key, httpx.Request] = {}
        # Built in this poll and the last one but not kept.
        self._built: set[Key] = set()
        self._built_before: set[Key] = set()
        self._token: str | None = None

    def get(self, key: Key, token: str) -> httpx.Request | None:
        """The request kept for `key`, built with `token`."""
        if token != self._token:
            self._kept, self._kept_before = {}, {}
            self._built, self._built_before = set(), set()
            self._token = token
        request = self._kept.get(key) or self._kept_before.pop(key, None)
        if request is not None:
            self._kept[key] = request
        return request

    def built(self, key: Key, request: httpx.Request) -> None:
        """A request just built for a URL that may be asked poll after poll."""
        if key in self._built_before:
            self._kept[key] = request
        else:
            self._built.add(key)

    def start_poll(self) -> None:
        self._kept_before, self._kept = self._kept, {}
        self._built_before, self._built = self._built, set()
