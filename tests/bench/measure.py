"""Measurement runs of the benchmark: a server's idle baseline, then N clients over a window.

A `ServerUnderTest` is a running RTSP server (its PID and a stream URL). `baseline()` measures
its CPU with no client; `clients_run()` joins N `RtspClient`s, lets them settle, then measures
over a fixed window the server's CPU, what every client received and the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import psutil

from tests.bench.rtsp_client import ClientMeasures, FrameSeen, RtspClient

JOIN_SPREAD_S = 1.0  # the N clients join spread over this span, not in one burst
LAG_TICK_S = 0.02  # the bench's own event-loop lag probe
MATCH_HORIZON_S = 5.0  # a frame seen through the relay is at most this late
NOISE_BLOCK_S = 5.0  # baseline blocks whose spread estimates the CPU figures' noise


class MeasurementError(Exception):
    """A figure could not be measured (not: a target was missed)."""


@dataclass
class ServerUnderTest:
    name: str
    pid: int
    url: str

    def cpu_seconds(self) -> float:
        """User + system CPU of the process, all its threads and its child processes."""
        process = psutil.Process(self.pid)
        times = process.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
        return total

    def main_thread_seconds(self) -> float:
        """CPU of the process's main thread alone (Vigil's event loop: hub and RTSP sessions)."""
        for thread in psutil.Process(self.pid).threads():
            if thread.id == self.pid:
                return thread.user_time + thread.system_time
        return float("nan")

    def rss_mb(self) -> float:
        process = psutil.Process(self.pid)
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total / 1e6


@dataclass
class Baseline:
    cpu_rate: float  # CPU-seconds per second (1.0 = one core) with no client
    main_thread_rate: float
    rss_mb: float
    blocks: list[float] = field(default_factory=list)  # CPU rate of each NOISE_BLOCK_S
    before: float = float("nan")  # the two measurements averaged into cpu_rate
    after: float = float("nan")

    @classmethod
    def bracket(cls, before: Baseline, after: Baseline) -> Baseline:
        """The mean of a baseline taken before the client runs and one taken after."""
        return cls(
            cpu_rate=(before.cpu_rate + after.cpu_rate) / 2,
            main_thread_rate=(before.main_thread_rate + after.main_thread_rate) / 2,
            rss_mb=max(before.rss_mb, after.rss_mb),
            blocks=before.blocks + after.blocks,
            before=before.cpu_rate,
            after=after.cpu_rate,
        )

    def noise(self) -> float:
        """One standard deviation of a no-client CPU rate: the spread of the baseline's
        NOISE_BLOCK_S blocks. Not scaled down for a longer window: an encoder's load drifts
        with the picture, so its noise does not average out like independent samples."""
        if len(self.blocks) < 3:
            return float("nan")
        return statistics.stdev(self.blocks)


@dataclass
class ClientsRun:
    server: str
    clients: int
    window_s: float
    cpu_rate: float  # whole process, CPU-seconds per second
    main_thread_rate: float
    rss_mb_max: float
    measures: list[ClientMeasures]
    failures: list[str]
    latencies_ms: list[float] = field(default_factory=list)
    hop_ms: list[float] = field(default_factory=list)  # peer only: extra delay of the relay
    matched: float = 1.0  # peer only: share of frames matched to the reference
    bench_cpu_pct: float = 0.0
    lag_p99_ms: float = 0.0
    lag_max_ms: float = 0.0
    host_busy_cores: float = 0.0  # every process on the machine, to spot outside load
    fanout_rate: float = float("nan")  # above the same server's baseline (`against`)
    main_thread_fanout_rate: float = float("nan")

    def against(self, base: Baseline) -> None:
        self.fanout_rate = self.cpu_rate - base.cpu_rate
        self.main_thread_fanout_rate = self.main_thread_rate - base.main_thread_rate

    @property
    def fanout_cpu_s_per_client_minute(self) -> float:
        return self.fanout_rate * 60 / self.clients

    @property
    def lost_frames(self) -> list[int]:
        return [m.lost_frames for m in self.measures]

    @property
    def decodable_ms(self) -> list[float]:
        return [m.decodable_ms for m in self.measures if m.decodable_ms is not None]

    @property
    def frame_rates(self) -> list[float]:
        return [m.frames / m.window_s for m in self.measures if m.window_s > 0]

    @property
    def bitrates_kbps(self) -> list[float]:
        return [m.octets * 8 / m.window_s / 1000 for m in self.measures if m.window_s > 0]


def percentile(values: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile (0 < fraction <= 1)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else float("nan")


def host_busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy (all cores, every process)."""
    times = psutil.cpu_times()
    busy = ("user", "nice", "system", "irq", "softirq", "steal")  # guest time is in user
    return sum(getattr(times, name, 0.0) for name in busy)


class LagProbe:
    """How late the bench's own event loop wakes up: large lags mean clients fell behind."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_TICK_S)
            self.lags_ms.append(max(0.0, (time.perf_counter() - before - LAG_TICK_S) * 1000))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def baseline(server: ServerUnderTest, seconds: float) -> Baseline:
    before, started = server.cpu_seconds(), time.monotonic()
    main_before = server.main_thread_seconds()
    rss: list[float] = []
    blocks: list[float] = []
    block_cpu, block_started = before, started
    while time.monotonic() - started < seconds:
        await asyncio.sleep(min(1.0, seconds))
        rss.append(server.rss_mb())
        now = time.monotonic()
        if now - block_started >= NOISE_BLOCK_S - 0.1:
            cpu = server.cpu_seconds()
            blocks.append((cpu - block_cpu) / (now - block_started))
            block_cpu, block_started = cpu, now
    elapsed = time.monotonic() - started
    return Baseline(
        cpu_rate=(server.cpu_seconds() - before) / elapsed,
        main_thread_rate=(server.main_thread_seconds() - main_before) / elapsed,
        rss_mb=max(rss),
        blocks=blocks,
    )


async def prime(server: ServerUnderTest, *, fps: int, seconds: float = 2.0) -> None:
    """One client plays for a moment, so the server's media path is in its playing state:
    gst-rtsp-server holds a prepared shared media blocked until its first PLAY."""
    clients, failures = await join(server.url, 1, fps=fps, record=False)
    if not clients:
        raise MeasurementError(f"{server.name}: cannot play: {failures}")
    await asyncio.sleep(seconds)
    await clients[0].close()


async def join(
    url: str, count: int, *, fps: int, record: bool
) -> tuple[list[RtspClient], list[str]]:
    """N clients playing `url`, started JOIN_SPREAD_S / N apart; and the failures."""
    clients = [RtspClient(url, fps=fps, record_frames=record) for _ in range(count)]
    tasks = []
    for client in clients:
        tasks.append(asyncio.create_task(client.play()))
        await asyncio.sleep(JOIN_SPREAD_S / count)
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    playing, failures = [], []
    for client, outcome in zip(clients, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failures.append(f"{type(outcome).__name__}: {outcome}")
            await client.close()
        else:
            playing.append(client)
    return playing, failures


async def clients_run(
    server: ServerUnderTest,
    count: int,
    *,
    window_s: float,
    warmup_s: float,
    fps: int,
    reference: RtspClient | None = None,
) -> ClientsRun:
    """N clients on `server`; with a `reference` (a client of Vigil itself), frames are
    matched to it by content, for latency through a relay."""
    clients, failures = await join(server.url, count, fps=fps, record=reference is not None)
    if not clients:
        raise MeasurementError(f"{server.name}: no client could play: {failures[:3]}")
    try:
        await asyncio.sleep(warmup_s)
        probe = LagProbe()
        me = psutil.Process()
        bench_before = sum(me.cpu_times()[:2])
        cpu_before, started = server.cpu_seconds(), time.monotonic()
        main_before = server.main_thread_seconds()
        host_before = host_busy_seconds()
        for client in clients:
            client.start_window()
        probe.start()
        rss: list[float] = []
        while time.monotonic() - started < window_s:
            await asyncio.sleep(min(1.0, window_s - (time.monotonic() - started)) or 0.01)
            rss.append(server.rss_mb())
        for client in clients:
            client.stop_window()
        elapsed = time.monotonic() - started
        cpu_rate = (server.cpu_seconds() - cpu_before) / elapsed
        main_rate = (server.main_thread_seconds() - main_before) / elapsed
        bench_cpu = (sum(me.cpu_times()[:2]) - bench_before) / elapsed * 100
        host_busy = (host_busy_seconds() - host_before) / elapsed
        await probe.stop()
    finally:
        await asyncio.gather(*(client.close() for client in clients))
    failures += [c.error for c in clients if c.error]
    run = ClientsRun(
        server=server.name,
        clients=count,
        window_s=elapsed,
        cpu_rate=cpu_rate,
        main_thread_rate=main_rate,
        rss_mb_max=max(rss),
        measures=[c.m for c in clients],
        failures=failures,
        bench_cpu_pct=bench_cpu,
        lag_p99_ms=percentile(probe.lags_ms, 0.99),
        lag_max_ms=max(probe.lags_ms, default=float("nan")),
        host_busy_cores=host_busy,
    )
    if sum(m.frames for m in run.measures) == 0:
        raise MeasurementError(f"{server.name}: {count} clients received no frame")
    if reference is None:
        run.latencies_ms = [ms for m in run.measures for ms in m.latencies_ms]
    else:
        match_to_reference(run, reference.m.frames_seen)
    return run


def match_to_reference(run: ClientsRun, reference: list[FrameSeen]) -> None:
    """Latency of frames received through the relay, from Vigil's capture time of the same
    frame (found by its first slice's bytes in the reference client's record)."""
    index: dict[bytes, list[FrameSeen]] = {}
    for frame in reference:
        if frame.taken_at is not None:
            index.setdefault(frame.key, []).append(frame)
    seen = matched = 0
    for measures in run.measures:
        for frame in measures.frames_seen:
            seen += 1
            best: FrameSeen | None = None
            for candidate in index.get(frame.key, ()):
                assert candidate.taken_at is not None
                age = frame.arrived_at - candidate.taken_at
                if 0 <= age < MATCH_HORIZON_S and (
                    best is None or candidate.taken_at > (best.taken_at or 0)
                ):
                    best = candidate
            if best is None or best.taken_at is None:
                continue
            matched += 1
            run.latencies_ms.append((frame.arrived_at - best.taken_at) * 1000)
            run.hop_ms.append((frame.arrived_at - best.arrived_at) * 1000)
    run.matched = matched / seen if seen else 0.0
