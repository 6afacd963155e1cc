"""`X-OnePin-Required-Version` and 426 UPGRADE_REQUIRED (onepin-api.md §8, issue 16).

A 426 is the API refusing this client: `onepin_up 0`, one log line naming the version asked for,
and a backoff as for a rejected key (no request on every scrape). The header alone, on an answer
the API did serve, is the minimum version of the official SDK, which the exporter is not (it
has no SDK version to compare): the answer is used, and one warning names the version asked for.
The answers are written by hand here (tests/faultserver.py), apart from the simulator's.
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from exporter.simulator import RunningSimulator, SimulatorConfig
from tests.fakeapi import TOKEN, FakeOnePin, standard_workspace
from tests.faultserver import Action, FaultServer, Reply, on_path
from tests.helpers import value
from tests.test_faults import JSON_TYPE, assert_all_up, exporter, requests_sent, ups

HEADER = "X-OnePin-Required-Version"
UPGRADE_BODY = json.dumps(
    {"error": {"code": "UPGRADE_REQUIRED", "message": "Please upgrade your client"}}
).encode()


def refuse(version: str | None) -> Reply:
    headers = {**JSON_TYPE, **({HEADER: version} if version is not None else {})}
    return Reply(426, UPGRADE_BODY, headers)


def test_a_426_gives_onepin_up_0_one_line_naming_the_version_and_a_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeOnePin(standard_workspace())
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        assert value(rig.scrape(), "onepin_up") == 1
        mark = rig.mark()
        api.script.append(on_path("/workflows", refuse("0.17.0")))
        for _ in range(5):
            text = rig.scrape()
            assert value(text, "onepin_up") == 0
        # Backing off as for a rejected key: not one request per scrape.
        assert requests_sent(text, "426") == 1
        lines = rig.matching("0\\.17\\.0", mark)
        assert len(lines) == 1, f"one line naming the version asked for, got {rig.lines(mark)}"
        assert "ERROR" in lines[0] and "outdated" in lines[0], lines[0]
        assert "next try in 30s" in lines[0], lines[0]
        assert rig.lines(mark) == lines, "nothing else is logged while refused"
        # The landing page tells the same.
        page = httpx.get(rig.running.url + "/").text
        assert "0.17.0" in page


def test_a_426_without_the_header_says_the_version_was_not_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeOnePin(standard_workspace())
    api = FaultServer(fake)
    api.script.append(on_path("/workflows", refuse(None)))
    with api, exporter(api.url, caplog) as rig:
        text = rig.scrape()
        assert value(text, "onepin_up") == 0
        lines = rig.matching("outdated")
        assert len(lines) == 1 and "not named" in lines[0], rig.lines()


def test_a_hostile_version_header_is_redacted_and_bounded(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeOnePin(standard_workspace())
    api = FaultServer(fake)
    version = f"1.0 Bearer {TOKEN} {TOKEN} " + "9" * 500
    api.script.append(on_path("/workflows", refuse(version)))
    with api, exporter(api.url, caplog) as rig:
        text = rig.scrape()
        assert value(text, "onepin_up") == 0
        (line,) = rig.matching("outdated")  # rig.lines() also checks no line holds the token
        assert "<redacted>" in line
        assert "9" * 100 not in line, "the version asked for is bounded"
        page = httpx.get(rig.running.url + "/").text
        assert TOKEN not in page


def test_the_header_on_served_answers_keeps_the_data_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeOnePin(standard_workspace())

    def with_header(request: httpx.Request) -> Action | None:
        response = fake.handle(request)
        headers = {**JSON_TYPE, HEADER: "0.17.0"}
        return Reply(response.status_code, response.content, headers)

    with FaultServer(fake) as api:
        api.script.append(with_header)
        with exporter(api.url, caplog) as rig:
            for _ in range(3):
                text = rig.scrape()
                assert_all_up(text, sorted(fake.workflows))
            lines = rig.matching("0\\.17\\.0")
            assert len(lines) == 1, f"one warning naming the version, got {rig.lines()}"
            assert lines[0].startswith("WARNING"), lines[0]


def test_the_simulator_asking_for_a_newer_sdk_still_serves_the_exporter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The simulator answers 426 only to the official SDK's User-Agent (`onepin/X`); the
    exporter's is `onepin-exporter/X`: it is served, with the header on every answer."""
    config = SimulatorConfig(workflows=4, seed=3, clock="manual", required_version="99.0")
    with RunningSimulator(config) as sim, exporter(sim.url, caplog, token=sim.token) as rig:
        for _ in range(2):
            text = rig.scrape()
            assert value(text, "onepin_up") == 1
        assert len(ups(text)) == 4
        assert requests_sent(text, "426") == 0
        lines = rig.matching("99\\.0", level=logging.WARNING)
        assert len(lines) == 1, rig.lines()
