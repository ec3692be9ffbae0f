"""A plain progress bar on stderr for long transfers (`vigil flash`, `vigil upgrade`).

Written here rather than taken from tqdm: the bar needs percent, rate and time left, about forty
lines, and the host CLI ships in the same package as the device's daemon, whose dependencies go
into every image. On a terminal the line is redrawn in place at most every REDRAW_S seconds;
elsewhere (a log, a pipe) a line is printed at each tenth, so logs stay short.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

REDRAW_S = 0.2
BAR_WIDTH = 30
MB = 1_000_000


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts bytes of a transfer of `total` bytes and draws the bar as they come."""

    def __init__(
        self,
        label: str,
        total: int,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._start = clock()
        self._drawn_at = -REDRAW_S
        self._tenths_shown = -1
        self._live = self._stream.isatty()

    def advance(self, count: int) -> None:
        self.done += count
        now = self._clock()
        if self._live and now - self._drawn_at >= REDRAW_S:
            self._drawn_at = now
            self._stream.write("\r" + self.line(now))
            self._stream.flush()
        elif not self._live and self.done * 10 // self.total > self._tenths_shown:
            self._tenths_shown = self.done * 10 // self.total
            print(self.line(now), file=self._stream, flush=True)

    def finish(self) -> None:
        """Draw the final state and end the line."""
        line = self.line(self._clock())
        if self._live:
            self._stream.write("\r" + line + "\n")
        elif self.done * 10 // self.total > self._tenths_shown:
            self._stream.write(line + "\n")
        self._stream.flush()

    def line(self, now: float) -> str:
        fraction = min(self.done / self.total, 1.0)
        elapsed = max(now - self._start, 1e-6)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        return (
            f"{self.label} {fraction * 100:5.1f}% [{bar}] {self.done / MB:8.1f} MB "
            f"{rate / MB:7.1f} MB/s ETA {_clock_text(left)}"
        )
