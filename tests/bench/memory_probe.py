"""Where a running vigild's memory goes: `python -m tests.bench.memory_probe [--clients 10]`.

The set-up of `make bench` (tests/bench/run.py): the real daemon on the simulated board,
activated, main stream H.264 1080p25 CBR 4096 kbit/s, the sub stream encoding too, one client
primed, 5 s to settle; then N RTSP/TCP clients on the main stream joining over 1 s, 3 s of
warm-up and a window in which the resident memory is sampled once a second as the bench does it
(`ServerUnderTest.rss_mb`: psutil RSS of the process and its children, MB = 10^6 bytes; the
maximum is the bench's figure). At the end of the window the process's mappings are summed
from /proc/PID/smaps: each shared library or package by file, the heap, and the anonymous
mappings by size (2 MB and more: encoder frames and other large buffers; less: Python's
arenas and small allocations). It takes one core-minute at most and no peer, unlike the bench.

The daemon inherits the environment, so a malloc setting is tried without a code change
(`MALLOC_ARENA_MAX=2 python -m tests.bench.memory_probe`), and `--inject CODE` runs Python in
the daemon at the end of the window through gdb (with `PYTHONTRACEMALLOC=1`, a tracemalloc
snapshot of its heap, for example).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tests.bench.measure import JOIN_SPREAD_S, ServerUnderTest, join, prime
from tests.bench.run import FPS, MAIN_STREAM, SETTLE_S, start_vigil
from tests.vigild import ADMIN_PASSWORD

MAPPING_LINE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$")
LARGE_KB = 2048
MB_PER_KB = 1024 / 1e6


@dataclass
class Mapping:
    name: str  # the file, [heap], [stack], ... or "" for an anonymous mapping
    size_kb: int
    rss_kb: int = 0
    anon_kb: int = 0  # anonymous pages (private copies of a file's pages included)

    @property
    def group(self) -> str:
        if self.name.startswith("/"):
            if "site-packages/" in self.name:
                return "package " + self.name.split("site-packages/")[1].split("/")[0]
            return "library " + Path(self.name).name.split(".so")[0].split("-")[0]
        if self.name:
            return self.name
        return f"anonymous {'>=' if self.size_kb >= LARGE_KB else '<'} 2 MB"


def smaps(pid: int) -> list[Mapping]:
    mappings: list[Mapping] = []
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        match = MAPPING_LINE.match(line)
        if match:
            size = (int(match[2], 16) - int(match[1], 16)) // 1024
            mappings.append(Mapping(match[3].strip(), size))
        elif line.startswith("Rss:"):
            mappings[-1].rss_kb = int(line.split()[1])
        elif line.startswith("Anonymous:"):
            mappings[-1].anon_kb = int(line.split()[1])
    return mappings


def inject(pid: int, code: str) -> None:
    """Run Python code in the daemon (gdb, holding the GIL), e.g. a tracemalloc dump."""
    escaped = code.replace("\\", "\\\\").replace('"', '\\"')
    commands = [
        "call (int)PyGILState_Ensure()",
        f'call (int)PyRun_SimpleString("{escaped}")',
        "call (void)PyGILState_Release($1)",
    ]
    argv = ["gdb", "-p", str(pid), "-batch", *(f"-ex={c}" for c in commands)]
    subprocess.run(argv, capture_output=True, timeout=120, check=False)


def report(samples: list[float], mappings: list[Mapping], limit_kb: int) -> str:
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for mapping in mappings:
        row = groups[mapping.group]
        row[0] += mapping.rss_kb
        row[1] += mapping.anon_kb
        row[2] += 1
    lines = [
        f"RSS (bench's way), MB: max {max(samples):.1f}, min {min(samples):.1f}, "
        f"{len(samples)} samples",
        f"{'mapping':<44} {'RSS MB':>7} {'anon MB':>8} {'maps':>5}",
    ]
    for name, (rss, anon, count) in sorted(groups.items(), key=lambda item: -item[1][0]):
        if rss >= limit_kb:
            lines.append(
                f"{name[:44]:<44} {rss * MB_PER_KB:7.1f} {anon * MB_PER_KB:8.1f} {count:5d}"
            )
    rss = sum(m.rss_kb for m in mappings)
    anon = sum(m.anon_kb for m in mappings)
    lines.append(f"{'all (smaps)':<44} {rss * MB_PER_KB:7.1f} {anon * MB_PER_KB:8.1f}")
    large = sorted(
        (m for m in mappings if not m.name and m.size_kb >= LARGE_KB), key=lambda m: -m.rss_kb
    )
    lines.append("anonymous mappings of 2 MB or more, size / resident MB:")
    lines.append(
        "  " + ", ".join(f"{m.size_kb * MB_PER_KB:.1f}/{m.rss_kb * MB_PER_KB:.1f}" for m in large)
    )
    return "\n".join(lines)


async def probe(args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory(prefix="vigil-memory-") as tmp:
        vigil = start_vigil(Path(tmp))
        try:
            assert vigil.proc is not None
            url = f"rtsp://admin:{ADMIN_PASSWORD}@127.0.0.1:{vigil.rtsp_port}{MAIN_STREAM}"
            server = ServerUnderTest("Vigil", vigil.proc.pid, url)
            await prime(server, fps=FPS)
            await asyncio.sleep(SETTLE_S)
            clients, failures = await join(url, args.clients, fps=FPS, record=False)
            if failures:
                raise RuntimeError(f"clients failed: {failures[:3]}")
            await asyncio.sleep(args.warmup)
            samples = []
            for _ in range(round(args.window)):
                await asyncio.sleep(1.0)
                samples.append(server.rss_mb())
            text = report(samples, smaps(vigil.proc.pid), args.min_kb)
            if args.inject:
                inject(vigil.proc.pid, args.inject)
                text += f"\nRSS after the injected code: {server.rss_mb():.1f} MB"
            await asyncio.gather(*(client.close() for client in clients))
        finally:
            vigil.stop()
    return text


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.memory_probe", description=__doc__)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after the joins")
    parser.add_argument("--window", type=float, default=30.0, help="seconds sampled")
    parser.add_argument("--min-kb", type=int, default=512, help="smallest group listed")
    parser.add_argument("--inject", default="", help="Python code run in the daemon at the end")
    args = parser.parse_args()
    if JOIN_SPREAD_S + args.warmup + args.window > 300:
        parser.error("a probe longer than 5 minutes is a bench run: use `make bench`")
    print(asyncio.run(probe(args)))


if __name__ == "__main__":
    main()
