"""The scrape deadline and its margins: the one place that says how long a scrape may take.

A scrape is answered before Prometheus's scrape timeout. The poll it starts gets all of it but a
margin (`POLL_MARGIN_SHARE` of it, at most `POLL_MARGIN_MAX`); requests to the API end by then.
The scrape waits for a poll a little past that (`WAIT_SHARE_OF_MARGIN`), the rest being for
rendering and sending the answer. Where the last answers took longer than the margin (a large
installation: 1-1.5 s for 20,000 workflows), the poll leaves them more (`answer_room`); a cold
start's backlog starts requests only in the first
`BACKLOG_SHARE` of the poll (`FIRST_BACKLOG_SHARE` in the first poll), Get Run Steps only in the
first `STEPS_SHARE` of what the rest of the poll leaves. Inside a poll, the worker
pool waits `HANG_MARGIN` past the deadline before it gives up on a request that ignores it, and
the client does not sleep before a retry unless `SLEEP_MARGIN` is left after the sleep.

Time is read from a `Clock` (monotonic seconds), injectable so that tests need no real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

# Without the scrape-timeout header (a person with curl), the poll gets this long (capped).
DEFAULT_SCRAPE_TIMEOUT = 10.0
# What the poll leaves of the scrape timeout: a quarter of it, at most half a second.
POLL_MARGIN_SHARE = 0.25
POLL_MARGIN_MAX = 0.5
# How long past the poll's deadline a scrape waits for a poll (a poll cut at its deadline still
# has to put its snapshot together; a poll already running may have a later deadline).
WAIT_SHARE_OF_MARGIN = 1 / 3
# Poller.snapshot's own wait past the poll's timeout when the caller names none.
SNAPSHOT_WAIT_MARGIN = 0.25
# The worker pool's wait past the deadline: requests stop themselves at it, this only guards
# against a hang.
HANG_MARGIN = 1.0
# A retry (or a Retry-After pause) is given up unless this much is left once it has waited.
SLEEP_MARGIN = 0.05
# A cold start's backlog (the requests of workflows still waiting for details) starts only in
# this share of a poll's time: a request started later would mostly be cut at the deadline.
# What the backlog brings in must still be applied, published and rendered before the scrape's
# timeout: the room for the answer, measured on the last ones, leaves that time; the first poll,
# before any answer was measured, leaves it by starting the backlog only in FIRST_BACKLOG_SHARE.
# At 5,000 workflows, with the whole poll (and no reserve), cold-start scrapes took 10.4-10.8 s
# of a 10 s timeout; with 0.8, up to 10.1 s; with 0.7, 7.8-9.5 s.
BACKLOG_SHARE = 0.95
FIRST_BACKLOG_SHARE = 0.7
# Get Run Steps (node executions) start only in this share of what is left of a poll once its
# other requests are done (of what is left, not of the poll: when they take more than half of
# it, as the steady 4,200 requests of 20,000 workflows do with 16 in flight, no run's steps
# would ever be read). Their bodies grow with a run's steps (5 MB and 60 ms of CPU for one of
# the benchmark's 13,000-step runs): at 20,000 workflows with 10 % churn, the reads of the runs
# that finished took every poll to its deadline (scrapes of 9.4-9.8 s of 10). Those not started
# are read at the next polls.
STEPS_SHARE = 0.5


class Deadline:
    """A point on the monotonic clock by which a poll must be done."""

    def __init__(self, seconds: float, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.at = clock() + seconds

    def remaining(self) -> float:
        return self.at - self.clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def allows_wait(self, seconds: float) -> bool:
        """Whether sleeping `seconds` still leaves SLEEP_MARGIN for the request after it."""
        return seconds < self.remaining() - SLEEP_MARGIN

    def sooner(self, share: float) -> Deadline:
        """A deadline `share` of the time left from now."""
        return Deadline(max(0.0, self.remaining()) * share, self.clock)

    def hang_timeout(self) -> float:
        """How long to wait for requests that should stop by themselves at the deadline."""
        return max(0.0, self.remaining()) + HANG_MARGIN


# The poll leaves the answer this many times what the last answers took to put together, render
# and send (the next may hold more: a cold start's details fill in; with 1.25, a 20,000-workflow
# cold start answered once in 9.98 s of 10), never less than the margin; before any answer was
# measured, this share of the timeout; the poll keeps at least POLL_MIN_SHARE of the timeout.
RENDER_RESERVE_FACTOR = 1.5
FIRST_ANSWER_SHARE = 0.2
POLL_MIN_SHARE = 0.5
# A slow answer is remembered over the next scrapes, fading by this factor per scrape.
ANSWER_DECAY = 0.8


def answer_room(last_answer: float | None, scrape_timeout: float, margin: float) -> float:
    """The time a poll leaves its scrape for the answer: at least `margin`, more where the last
    answers took longer (`answer_time`; None before the first)."""
    if last_answer is None:
        wanted = scrape_timeout * FIRST_ANSWER_SHARE
    else:
        wanted = last_answer * RENDER_RESERVE_FACTOR
    return min(max(margin, wanted), scrape_timeout * (1 - POLL_MIN_SHARE))


def answer_time(previous: float | None, took: float) -> float:
    """What the next scrape reserves for: the answer just sent (seconds from its poll's end, or
    its deadline if that came first, to the last byte), or a slower one lately, fading."""
    return max(took, (previous or 0.0) * ANSWER_DECAY)


@dataclass(frozen=True, slots=True)
class ScrapeDeadline:
    poll: float  # the poll's own deadline: requests to the API end by then
    wait: float  # the longest this scrape waits for a poll, its own or one already running


def scrape_deadline(
    header: str | None, cap: float, last_answer: float | None = 0.0
) -> ScrapeDeadline:
    """A scrape's deadlines from its scrape-timeout header (else DEFAULT_SCRAPE_TIMEOUT): the
    poll gets all of it but the room for the answer (a margin, or more from `last_answer`:
    `answer_time`, None before the first answer), capped by `cap` (collection.max_duration)."""
    try:
        scrape_timeout = float(header) if header else DEFAULT_SCRAPE_TIMEOUT
    except ValueError:
        scrape_timeout = DEFAULT_SCRAPE_TIMEOUT
    if not 0 < scrape_timeout < float("inf"):
        scrape_timeout = DEFAULT_SCRAPE_TIMEOUT
    margin = min(POLL_MARGIN_MAX, scrape_timeout * POLL_MARGIN_SHARE)
    poll = min(cap, scrape_timeout - answer_room(last_answer, scrape_timeout, margin))
    return ScrapeDeadline(poll, poll + margin * WAIT_SHARE_OF_MARGIN)


def snapshot_wait(timeout: float, wait: float | None) -> float:
    """How long Poller.snapshot waits for a poll of `timeout` s (`wait` if the caller names it)."""
    return timeout + SNAPSHOT_WAIT_MARGIN if wait is None else wait
