"""HTTP push to alarm servers against a real aiohttp server: the alert XML POSTed with digest
(MD5 and SHA-256) or basic authentication, over HTTP and HTTPS; activations and ends; the
server's refusals; the test post; a host that does not answer delays no other host."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.notify_peers import (
    HOST_PASSWORD,
    HOST_USER,
    AlarmServer,
    silent_server,
    stored_credentials,
)
from tests.vigild import free_port
from vigil.config.events import EventTrigger, HttpHost
from vigil.events.bus import Event
from vigil.events.http_push import HttpPushAction, http_push_actions, post_alert
from vigil.events.linkage import ActionFailed, ActionRunner
from vigil.events.notify import NotifyTester
from vigil.security.credentials import Credentials, http_host_name

MOTION = Event("vmd", 1, True, datetime(2026, 3, 7, 23, 59, 58, tzinfo=UTC), id=7)
TRIGGER = EventTrigger(event="vmd", source=1, center=True)


def render(event: Event) -> bytes:
    """Stands in for events.alerts.alert_xml: any bytes that say which event it was."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<EventNotificationAlert version="2.0">'
        f"<eventType>{event.type}</eventType><eventState>{event.state}</eventState>"
        f"<channelID>{event.source}</channelID></EventNotificationAlert>"
    ).encode()


def http_host(host_id: int, port: int, **changes: object) -> HttpHost:
    return dataclasses.replace(
        HttpHost(id=host_id, host="127.0.0.1", port=port, path="/alarm/in?site=lobby",
                 auth="digest", user=HOST_USER),
        **changes,
    )  # fmt: skip


@pytest.fixture
def credentials(tmp_path: Path) -> Credentials:
    return stored_credentials(tmp_path, {http_host_name(n): HOST_PASSWORD for n in range(1, 5)})


@pytest.fixture
def digest_server() -> Iterator[AlarmServer]:
    server = AlarmServer("digest")
    yield server
    server.close()


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
async def test_the_alert_is_posted_with_digest_auth_at_start_and_end(
    credentials: Credentials, algorithm: str
) -> None:
    server = AlarmServer("digest", algorithm=algorithm)
    try:
        hosts = [http_host(2, server.port)]
        actions = http_push_actions(lambda: hosts, credentials, render, timeout_s=5)
        assert [a.name for a in actions] == [f"http host {i}" for i in (1, 2, 3, 4)]
        wanted = [a for a in actions if a.wanted(TRIGGER, MOTION)]
        assert [a.name for a in wanted] == ["http host 2"]  # the only configured host
        ended = dataclasses.replace(MOTION, active=False, id=8)
        assert wanted[0].wanted(TRIGGER, ended)  # the alarm server sees the end too
        assert not wanted[0].wanted(dataclasses.replace(TRIGGER, center=False), MOTION)
        for event in (MOTION, ended):
            await wanted[0].run(event)
        posts = server.wait_for_posts(2)
    finally:
        server.close()
    assert [p.body for p in posts] == [render(MOTION), render(ended)]
    assert {p.path for p in posts} == {"/alarm/in?site=lobby"}
    assert {p.content_type for p in posts} == {"application/xml"}
    assert all(p.authorization.startswith("Digest ") for p in posts)
    assert all(f"algorithm={algorithm}" in p.authorization for p in posts)


async def test_basic_auth_over_https_and_the_certificate_check(
    tmp_path: Path, credentials: Credentials
) -> None:
    server = AlarmServer("basic", tls_directory=tmp_path)
    try:
        host = http_host(1, server.port, protocol="HTTPS", auth="basic", verify_certificate=False)
        await HttpPushAction(1, lambda: [host], credentials, render).run(MOTION)
        (post,) = server.wait_for_posts(1)
        assert post.authorization.startswith("Basic ") and post.body == render(MOTION)
        checked = dataclasses.replace(host, verify_certificate=True)
        with pytest.raises(ActionFailed, match="certificate verify failed"):
            await HttpPushAction(1, lambda: [checked], credentials, render).run(MOTION)
        assert len(server.posts) == 1
    finally:
        server.close()


async def test_refusals_name_the_url_and_the_status(
    digest_server: AlarmServer, credentials: Credentials
) -> None:
    host = http_host(3, digest_server.port)
    url = f"http://127.0.0.1:{digest_server.port}/alarm/in?site=lobby"
    credentials.set(http_host_name(3), "Wrong-Password")
    with pytest.raises(ActionFailed) as failure:
        await HttpPushAction(3, lambda: [host], credentials, render).run(MOTION)
    assert str(failure.value) == f"{url}: HTTP 401 Unauthorized"
    no_auth = dataclasses.replace(host, auth="none")
    with pytest.raises(ActionFailed, match="HTTP 401"):
        await post_alert(no_auth, "", render(MOTION), 5)
    closed = dataclasses.replace(host, port=free_port())
    with pytest.raises(ActionFailed, match=rf"127.0.0.1:{closed.port}.*Connect"):
        await post_alert(closed, HOST_PASSWORD, render(MOTION), 5)
    assert digest_server.posts == []
    # A host removed after the event was dispatched: nothing to do, no failure.
    await HttpPushAction(3, lambda: [], credentials, render).run(MOTION)


async def test_the_test_post_is_a_heartbeat(
    digest_server: AlarmServer, credentials: Credentials
) -> None:
    tester = NotifyTester(None, None, render, lambda: MOTION.at)  # type: ignore[arg-type]
    unsaved = http_host(4, digest_server.port, path="/heartbeat")
    await tester.test_http_host(unsaved, HOST_PASSWORD)
    (post,) = digest_server.wait_for_posts(1)
    assert post.path == "/heartbeat"
    assert post.body == render(Event("videoloss", 0, False, MOTION.at))
    with pytest.raises(ActionFailed, match="HTTP 401"):
        await tester.test_http_host(unsaved, "Wrong-Password")


async def test_a_host_that_does_not_answer_delays_no_other(
    digest_server: AlarmServer, credentials: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vigil.linkage")
    runner = ActionRunner(retry_delays_s=(0.2, 0.2), attempt_timeout_s=5)
    async with silent_server() as (dead_port, connections):
        hosts = [http_host(1, dead_port), http_host(2, digest_server.port)]
        actions = http_push_actions(lambda: hosts, credentials, render, timeout_s=2)
        started = time.monotonic()
        for action in actions:
            if action.wanted(TRIGGER, MOTION):
                runner.start(action, MOTION)
        await asyncio.to_thread(digest_server.wait_for_posts, 1, 1.5)
        assert time.monotonic() - started < 1.5
        assert len(connections) == 1  # while the dead host's first attempt still waited
        while "failed after 3 attempts" not in caplog.text:
            assert time.monotonic() - started < 15, caplog.text
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    assert len(connections) == 3
    assert len(digest_server.posts) == 1  # the live host was not posted to again
    lines = [r.getMessage() for r in caplog.records if r.name == "vigil.linkage"]
    assert [line.split(" for ")[0] for line in lines].count("http host 1") == 3
    assert (
        f"http host 1 for vmd 1 active failed after 3 attempts: http://127.0.0.1:{dead_port}"
        "/alarm/in?site=lobby: no answer within 2 s" in lines
    )
    assert "http host 2 for vmd 1 active done" in lines
    await runner.stop()
