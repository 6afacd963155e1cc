"""The OnePin API client: HTTP, retries within a deadline, pagination, typed results.

It knows the API's shapes and nothing of Prometheus. Every request goes to the configured
`api_url` origin: pagination `next` links are never followed (offsets are computed here, as the
API docs advise) and redirects are not followed, so the token cannot be sent anywhere else.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from exporter import __version__
from exporter.apierrors import (
    VERSION_LIMIT,
    ApiError,
    BudgetDeferred,
    DeadlineExceeded,
    Retryable,
    UnusableResponse,
    api_error,
    status_text,
)
from exporter.apimodels import Catalogue
from exporter.apistats import ApiStats
from exporter.bodies import UndecodableBody, load_json
from exporter.config import HttpSettings, Token
from exporter.deadline import Clock, Deadline
from exporter.keptrequests import KeptRequests
from exporter.models import (
    DecodeError,
    Page,
    Run,
    RunsSummary,
    Workflow,
    parse_error_message,
    parse_run_page,
    parse_run_status,
    parse_runs_summary,
    parse_workflow_definition,
    parse_workflow_page,
)
from exporter.nodes import RunSteps, parse_run_steps
from exporter.ratebudget import RequestBudget
from exporter.redact import Redactor, redactor_for
from exporter.requestlog import log as request_log
from exporter.requestlog import log_request
from exporter.responses import (
    MAX_BODY_BYTES,
    REQUIRED_VERSION,
    default_transport,
    exchange,
    no_answer,
)
from exporter.retry import RETRY_STATUSES, asked_wait, blocks_key, next_wait
from exporter.transport import BodyTooLarge

T = TypeVar("T")
log = logging.getLogger("exporter.client")

PAGE_LIMIT = 100
WORKFLOW_MEMO_SIZE = 50_000
USER_AGENT = f"onepin-exporter/{__version__}"
# A stable order for List Workflows (the API adds `id` as the last key): see list_workflows.
_BY_NAME = {"sort": "name", "order": "asc"}
_REPEATED_ENDPOINTS = frozenset({"list_workflows", "get_run_status"})
ENDPOINTS = ("list_workflows", "list_runs", "get_run_status", "runs_summary", "get_run_steps")
PRESET_CODES = ("200", "429", "500", "502", "503", "504", "error")


class OnePinClient:
    """One pooled HTTP client per workspace, with bounded concurrency."""

    def __init__(
        self,
        api_url: str,
        token: Token,
        settings: HttpSettings,
        stats: ApiStats | None = None,
        workspace_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        budget: RequestBudget | None = None,
    ) -> None:
        self._base = api_url.rstrip("/") + "/api/v1"
        self._token = token
        self._settings = settings
        self._workspace_id = workspace_id
        self.stats = stats if stats is not None else ApiStats()
        # Series that start at 0, so that rate() and increase() see the first 429 or 5xx.
        for endpoint in ENDPOINTS:
            for code in PRESET_CODES:
                self.stats.requests.setdefault((endpoint, code), 0)
        self.max_concurrency = settings.max_concurrency
        # Injectable for tests: what a Retry-After blocks until, and the waits before retries.
        self._clock, self._sleep = clock, sleep
        # Every attempt takes a place in it (http.max_requests_per_minute), retries included.
        self.budget = budget or RequestBudget(settings.max_requests_per_minute, clock)
        self._blocked_until = 0.0  # monotonic time before which the API asked us to wait
        self._blocked_by: ApiError | None = None
        self._semaphore = asyncio.Semaphore(settings.max_concurrency)
        self._kept = KeptRequests()
        self._workflow_memo: dict[str, tuple[object, Workflow]] = {}
        self._required_version: str | None = None  # the last X-OnePin-Required-Version seen
        # Requests go straight to an httpx transport: httpx's Request and Response, without
        # the AsyncClient's redirect, cookie and auth machinery, which this client does not
        # use (it never follows redirects) and which doubled the CPU a request costs.
        self._transport = transport or default_transport(settings)

    async def aclose(self) -> None:
        await self._transport.aclose()

    # --- endpoints ----------------------------------------------------------------------------

    async def list_workflows(self, deadline: Deadline) -> Catalogue:
        """Every workflow of the workspace, ordered by name: the first two pages one at a
        time, the rest in parallel waves.

        By name, because the API's default order (`updated_at` desc) moves a workflow updated
        between two page fetches off both pages. Paging stops at a page that is short or
        empty, at the end `pagination.total` gives, or at a full page that adds no workflow
        not seen already: a server or proxy that ignores `offset` answers the first page
        again, and without that rule it would be asked for it until the deadline. The second
        page is asked alone so that such a server costs two requests, not a wave.
        """
        first = await self._workflow_page(0, deadline)
        pages = [first]
        seen = _ids(first)
        step = first.size  # the page size the server applied, which may be below what was asked
        total = first.pagination.total
        offset, wave, paging = step, 1, None
        while step and pages[-1].size >= step and (total is None or offset < total):
            count = wave if total is None else min(wave, -(-(total - offset) // step))
            offsets = range(offset, offset + count * step, step)
            got = await asyncio.gather(*(self._workflow_page(off, deadline) for off in offsets))
            offset += count * step
            wave = 1 if total is None else self.max_concurrency
            for page in got:
                ids = _ids(page)
                if paging is None and page.size >= step and ids <= seen:
                    paging = (
                        f"page {len(pages) + 1} repeats workflows already seen (does the API, "
                        "or a proxy, ignore `offset`?): paging stopped, workflows past the "
                        f"first {len(seen)} are not seen"
                    )
                seen |= ids
                pages.append(page)
            if paging is not None or any(page.size < step for page in got):
                break
        workflows: dict[str, Workflow] = {}
        bad: dict[str, str] = {}
        for page in pages:
            for wf in page.items:
                workflows.setdefault(wf.id, wf)
            bad.update(page.bad)
        return Catalogue(tuple(workflows.values()), bad, paging)

    async def _workflow_page(self, offset: int, deadline: Deadline) -> Page[Workflow]:
        return await self._page(
            "list_workflows", "/workflows", offset, _BY_NAME, self._parse_workflows, deadline
        )

    async def list_runs(
        self, workflow_id: str, limit: int, deadline: Deadline, offset: int = 0
    ) -> Page[Run]:
        """`limit` runs of a workflow, newest first, skipping the `offset` newest."""
        params = {"sort": "created_at", "order": "desc"}
        path = f"/workflows/{quote(workflow_id, safe='')}/runs"
        return await self._page("list_runs", path, offset, params, parse_run_page, deadline, limit)

    async def get_run_status(self, workflow_id: str, run_id: str, deadline: Deadline) -> Run:
        path = f"/workflows/{quote(workflow_id, safe='')}/runs/{quote(run_id, safe='')}/status"
        body = await self._get("get_run_status", path, {}, deadline)
        return self._decode("get_run_status", body, parse_run_status)

    async def get_run_steps(self, workflow_id: str, run_id: str, deadline: Deadline) -> RunSteps:
        """A run's node executions, without their results (`include_result` left false)."""
        path = f"/workflows/{quote(workflow_id, safe='')}/runs/{quote(run_id, safe='')}/steps"
        body = await self._get("get_run_steps", path, {}, deadline)
        return self._decode("get_run_steps", body, parse_run_steps)

    async def runs_summary(self, workflow_id: str, deadline: Deadline) -> RunsSummary:
        path = f"/workflows/{quote(workflow_id, safe='')}/runs/summary"
        body = await self._get("runs_summary", path, {}, deadline)
        return self._decode("runs_summary", body, parse_runs_summary)

    async def workflow_definition(self, workflow_id: str, deadline: Deadline) -> Any:
        """Get Workflow's `definition`, as sent."""
        path = f"/workflows/{quote(workflow_id, safe='')}"
        body = await self._get("get_workflow", path, {}, deadline)
        return self._decode("get_workflow", body, parse_workflow_definition)

    # --- plumbing -----------------------------------------------------------------------------

    async def _page(
        self,
        endpoint: str,
        path: str,
        offset: int,
        params: Mapping[str, str],
        parse: Callable[[Any], Page[T]],
        deadline: Deadline,
        limit: int = PAGE_LIMIT,
    ) -> Page[T]:
        query = {**params, "offset": str(offset), "limit": str(limit)}
        body = await self._get(endpoint, path, query, deadline)
        return self._decode(endpoint, body, parse)

    def _decode(self, endpoint: str, body: Any, parse: Callable[[Any], T]) -> T:
        try:
            return parse(body)
        except DecodeError as exc:  # it quotes values from the body
            raise api_error(
                self._redactor(), endpoint, f"unexpected response: {exc}", kind=UnusableResponse
            ) from None

    def _parse_workflows(self, body: Any) -> Page[Workflow]:
        page = parse_workflow_page(body, self._workflow_memo)
        if len(self._workflow_memo) > WORKFLOW_MEMO_SIZE:
            self._workflow_memo.clear()
        return page

    def _request(self, endpoint: str, path: str, params: Mapping[str, str]) -> httpx.Request:
        """A GET request, built once for a URL asked poll after poll (exporter/keptrequests.py)."""
        token = self._token.reveal()
        key = (path, tuple(params.items()))
        request = self._kept.get(key, token)
        if request is not None:
            return request
        url = httpx.URL(self._base + path, params=params)
        headers = {
            "Host": url.netloc.decode("ascii"),
            "Authorization": f"Bearer {token}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            # Bodies as sent: a JSON answer of a few kB is not worth inflating. A server or
            # proxy that compresses anyway is still read, within the size limit (`_read`).
            "Accept-Encoding": "identity",
        }
        if self._workspace_id:
            headers["X-Workspace-Id"] = self._workspace_id
        request = httpx.Request("GET", url, headers=headers)
        if endpoint in _REPEATED_ENDPOINTS:
            self._kept.built(key, request)
        return request

    def start_poll(self) -> None:
        """Keep the requests of this poll and the last one; forget those of runs that ended."""
        self._kept.start_poll()

    async def _get(
        self, endpoint: str, path: str, params: Mapping[str, str], deadline: Deadline
    ) -> Any:
        """GET with retries on connection errors, 408/429/5xx, all within the deadline."""
        attempt = 0
        while True:
            try:
                await self._rate_limit_pause(endpoint, deadline)
                return await self._attempt(endpoint, path, params, deadline, attempt + 1)
            except Retryable as retry:
                error = retry.error
                blocked = blocks_key(error.status, retry.wait)
                if blocked is not None:
                    # Honoured by every request of this key, in this poll and the next ones.
                    self._blocked_until = max(self._blocked_until, self._clock() + blocked)
                    self._blocked_by = error
                wait = next_wait(attempt, self._settings.max_retries, retry.wait, random.random)
                # Give up now rather than sleep past the deadline.
                if wait is None or not deadline.allows_wait(wait):
                    raise error from None
                attempt += 1
                await self._sleep(wait)

    async def _rate_limit_pause(self, endpoint: str, deadline: Deadline) -> None:
        """Wait out a Retry-After the API asked for, or give up if it outlasts the deadline."""
        wait = self._blocked_until - self._clock()
        if wait <= 0:
            return
        if not deadline.allows_wait(wait):
            last = self._blocked_by  # the same problem, told the same way: logged once
            raise ApiError(endpoint, last.message if last else "rate limited", 429,
                           last.code if last else None)  # fmt: skip
        await self._sleep(wait)

    async def _attempt(
        self,
        endpoint: str,
        path: str,
        params: Mapping[str, str],
        deadline: Deadline,
        attempt: int = 1,
    ) -> Any:
        async with self._semaphore:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise DeadlineExceeded(endpoint, "scrape deadline reached before the request")
            if not self.budget.take():
                raise BudgetDeferred(endpoint, "deferred: http.max_requests_per_minute is spent")
            timeout = min(self._settings.timeout, remaining)
            started = time.perf_counter()
            code = "error"
            try:
                # A hard bound on the whole exchange: a server that drips bytes cannot
                # hold a request past the deadline.
                async with asyncio.timeout(timeout):
                    request = self._request(endpoint, path, params)
                    status, headers, raw = await exchange(self._transport, request, endpoint)
                code = str(status)
            except (httpx.HTTPError, TimeoutError) as exc:
                failure = no_answer(exc, timeout, self._settings.timeout)
                raise Retryable(ApiError(endpoint, failure)) from None
            except BodyTooLarge:
                raise ApiError(
                    endpoint, f"response body larger than {MAX_BODY_BYTES // 1048576} MiB"
                ) from None
            finally:
                elapsed = time.perf_counter() - started
                self.stats.record(endpoint, code, elapsed)
                if request_log.isEnabledFor(logging.DEBUG):  # --log.level=debug
                    log_request(self._base, endpoint, path, params, code, elapsed, attempt)
        return self._interpret(endpoint, status, headers, raw)

    def _redactor(self) -> Redactor:
        return redactor_for(self._token.reveal())

    def _note_required_version(self, value: str) -> None:
        """The header on an answer the API served: it names the official SDK's minimum, and
        the exporter is not the SDK (it has no SDK version to compare), so the answer is used;
        one warning per version asked for, in case the API starts refusing (426)."""
        if value == self._required_version:
            return
        self._required_version = value
        log.warning(
            "the API asks for client version %s or newer (X-OnePin-Required-Version), the "
            "official SDK's minimum; it still serves this exporter, so polling goes on. If it "
            "answers 426 instead, the workspace is down (its up metric 0) and a newer exporter "
            "release may be needed",
            self._redactor().clean(value, VERSION_LIMIT),
            extra={"api_url": self._base},
        )

    def _interpret(self, endpoint: str, status: int, headers: Mapping[str, str], raw: bytes) -> Any:
        body: Any = None
        problem = None
        try:
            body = load_json(raw) if raw else None
        except UndecodableBody as exc:
            problem = str(exc)
        if problem is None and body is not None:
            redactor = self._redactor()
            if redactor.suspect(raw):  # an API that echoes the key: not in any name or text
                body = redactor.scrub(body)
        required = headers.get(REQUIRED_VERSION)
        if 200 <= status < 300:
            if required:
                self._note_required_version(required)
            if problem is not None:
                kind = headers.get("content-type", "unknown type").split(";")[0]
                raise api_error(
                    self._redactor(),
                    endpoint,
                    f"response is {problem} ({kind}, {len(raw)} bytes)",
                    status,
                )
            return body
        code, message, request_id = parse_error_message(body)
        if message is None:
            message = status_text(status, headers)
        redactor = self._redactor()
        error = api_error(redactor, endpoint, message, status, code, request_id, ApiError, required)
        if status in RETRY_STATUSES:
            raise Retryable(error, asked_wait(status, headers, time.time()))
        raise error


def _ids(page: Page[Workflow]) -> set[str]:
    """The workflow ids on a catalogue page, readable entries or not."""
    return {wf.id for wf in page.items} | {
        wid for wid, _ in page.bad if not wid.startswith("data[")
    }
