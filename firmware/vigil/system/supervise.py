"""Long-running loops that must outlive their own bugs: a crash is logged and the loop is
started again after a back-off that doubles (1 s up to a minute), so one bad state cannot
take a service down for good, nor spin the CPU on a loop that fails at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

RESTART_FIRST_S = 1.0
RESTART_MAX_S = 60.0


async def supervise(
    run: Callable[[], Awaitable[None]],
    what: str,
    logger: logging.Logger,
    *,
    keep_going: Callable[[], bool] = lambda: True,
) -> None:
    """Run `run` again whenever it crashes (and, while `keep_going()`, when it returns)."""
    backoff = RESTART_FIRST_S
    while keep_going():
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s crashed; restarting in %.0f s", what, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RESTART_MAX_S)
