"""Linkage actions that leave the device (mail, FTP, HTTP push): one interface, run with
bounded retries, a timeout per attempt and a log line, never on the bus's time.

An action that talks to a peer implements `Action`. The runner starts each run as its own
task, so a dead SMTP server delays nothing else; a run that fails is retried after 1 s and
4 s (three attempts in all), then given up with one warning. Each action has at most
`MAX_RUNNING` runs in flight: beyond that new runs are dropped with a log line instead of
piling up behind a peer that does not answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from vigil.config.events import EventTrigger
from vigil.events.bus import Event

log = logging.getLogger("vigil.linkage")

RETRY_DELAYS_S = (1.0, 4.0)
ATTEMPT_TIMEOUT_S = 30.0
MAX_RUNNING = 8


class ActionFailed(Exception):
    """The peer refused or could not be reached; the message says why, for the log."""


class Action(Protocol):
    name: str  # for log lines: "email", "ftp", "http host 1"

    def wanted(self, trigger: EventTrigger, event: Event) -> bool:
        """Whether `trigger` asks for this action on `event` (its activation, or its end)."""
        ...

    async def run(self, event: Event) -> None:
        """Do it once; raise ActionFailed or OSError (retried) on failure."""
        ...


class ActionRunner:
    def __init__(
        self,
        retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
        attempt_timeout_s: float = ATTEMPT_TIMEOUT_S,
    ) -> None:
        self.retry_delays_s = retry_delays_s
        self.attempt_timeout_s = attempt_timeout_s
        self._running: dict[str, set[asyncio.Task[None]]] = {}

    def start(self, action: Action, event: Event) -> None:
        running = self._running.setdefault(action.name, set())
        if len(running) >= MAX_RUNNING:
            log.warning("%s: %d runs still pending, %s %s not sent", action.name,
                        len(running), event.type, event.state)  # fmt: skip
            return
        task = asyncio.get_running_loop().create_task(self._attempts(action, event))
        running.add(task)
        task.add_done_callback(running.discard)

    async def _attempts(self, action: Action, event: Event) -> None:
        what = f"{event.type} {event.source} {event.state}"
        for attempt, delay in enumerate((*self.retry_delays_s, None), start=1):
            try:
                async with asyncio.timeout(self.attempt_timeout_s):
                    await action.run(event)
            except (ActionFailed, OSError, TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
                if delay is None:
                    log.warning("%s for %s failed after %d attempts: %s", action.name, what,
                                attempt, reason)  # fmt: skip
                    return
                log.info("%s for %s failed (attempt %d): %s; retrying in %g s", action.name,
                         what, attempt, reason, delay)  # fmt: skip
                await asyncio.sleep(delay)
            except Exception:
                log.exception("%s for %s failed", action.name, what)
                return
            else:
                log.info("%s for %s done", action.name, what)
                return

    async def stop(self) -> None:
        tasks = [t for running in self._running.values() for t in running]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
