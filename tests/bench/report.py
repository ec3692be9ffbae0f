"""The benchmark's table: Vigil and gst-rtsp-server side by side, ratios, targets, context."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from tests.bench.measure import Baseline, ClientsRun, median, percentile

# The targets of issue 3 (media), as figures: (limit, how it is judged).
CPU_RATIO_TARGET = 1.0  # fan-out CPU at 50 clients, Vigil / gst-rtsp-server
DECODABLE_TARGET_MS = 100.0  # PLAY -> first decodable frame, p95
LATENCY_TARGET_MS = 150.0  # capture -> client, p95
RSS_TARGET_MB = 120.0  # main + sub encoding, 10 clients
TARGET_CLIENTS = 50
RSS_CLIENTS = 10


Verdict = tuple[str, bool | None, str]  # target text, met (None: no target), note


@dataclass
class ServerFigures:
    name: str
    baseline: Baseline
    runs: dict[int, ClientsRun]


def _num(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _ratio(ours: float, theirs: float, noisy: bool = False) -> str:
    if math.isnan(ours) or math.isnan(theirs) or theirs <= 0:
        return "—"
    return f"{ours / theirs:.2f}x" + (" *" if noisy else "")


def _clients(n: int) -> str:
    return f"{n} client" + ("" if n == 1 else "s")


def met(ok: bool | None, note: str = "") -> str:
    if ok is None:
        return note or "—"
    return ("**yes**" if ok else "**no**") + (f" ({note})" if note else "")


def table(vigil: ServerFigures, peer: ServerFigures) -> list[list[str]]:
    header = ["Figure", "Clients", "Vigil", "gst-rtsp-server", "Vigil / peer", "Target", "Met"]
    rows = [header]
    counts = sorted(set(vigil.runs) & set(peer.runs))

    def add(
        figure: str,
        value: Callable[[ClientsRun], tuple[str, float, bool]],
        target: Callable[[int, ClientsRun], Verdict] | None = None,
        only: int | None = None,
    ) -> None:
        for n in counts if only is None else [only]:
            ours, theirs = vigil.runs.get(n), peer.runs.get(n)
            if ours is None or theirs is None:
                continue
            ours_text, ours_value, ours_noisy = value(ours)
            theirs_text, theirs_value, theirs_noisy = value(theirs)
            target_text, ok, note = target(n, ours) if target else ("", None, "")
            first = figure if n == (only or counts[0]) else ""
            rows.append(
                [
                    first,
                    str(n),
                    ours_text,
                    theirs_text,
                    _ratio(ours_value, theirs_value, ours_noisy or theirs_noisy),
                    target_text,
                    met(ok, note) if target_text else "",
                ]
            )

    def noise(run: ClientsRun) -> float:
        """One sigma of a fan-out figure in CPU-s per client-minute, from its baselines."""
        figures = vigil if run.server == vigil.name else peer
        return figures.baseline.noise() * 60 / run.clients

    def cpu(run: ClientsRun) -> tuple[str, float, bool]:
        value = run.fanout_cpu_s_per_client_minute
        sd = noise(run)
        text = f"{value:.3f} ± {sd:.3f} ({run.fanout_rate * 100:.1f} % core)"
        return text, value, abs(value) <= 2 * sd  # within noise of zero: a loose ratio

    def cpu_target(n: int, run: ClientsRun) -> Verdict:
        if n != TARGET_CLIENTS:
            return "", None, ""
        theirs_run = peer.runs[n]
        theirs = theirs_run.fanout_cpu_s_per_client_minute
        ours = run.fanout_cpu_s_per_client_minute
        target = f"≤ {CPU_RATIO_TARGET:.1f}x peer"
        sd = math.hypot(noise(run), noise(theirs_run))
        if abs(ours - CPU_RATIO_TARGET * theirs) <= 2 * sd:
            return target, None, "inconclusive (within noise)"
        return target, ours <= CPU_RATIO_TARGET * theirs, ""

    def loop_target(n: int, run: ClientsRun) -> Verdict:
        if n != TARGET_CLIENTS:
            return "", None, ""
        ours = run.main_thread_fanout_rate * 60 / n
        theirs = peer.runs[n].fanout_cpu_s_per_client_minute
        return f"≤ {CPU_RATIO_TARGET:.1f}x peer", ours <= CPU_RATIO_TARGET * theirs, ""

    def loop_cpu(run: ClientsRun) -> tuple[str, float, bool]:
        if run.server != vigil.name:
            return cpu(run)
        value = run.main_thread_fanout_rate * 60 / run.clients
        return f"{value:.3f} ({run.main_thread_fanout_rate * 100:.1f} % core)", value, False

    def lost(run: ClientsRun) -> tuple[str, float, bool]:
        frames = run.lost_frames
        mean = sum(frames) / len(frames) if frames else float("nan")
        return f"{_num(mean, 2)} (max {max(frames, default=0)})", mean, False

    def lost_target(n: int, run: ClientsRun) -> Verdict:
        return "0", sum(run.lost_frames) == 0, ""

    def decodable(run: ClientsRun) -> tuple[str, float, bool]:
        values = run.decodable_ms
        mid = median(values)
        return f"{_num(mid)} / {_num(percentile(values, 0.95))}", mid, False

    def decodable_target(n: int, run: ClientsRun) -> Verdict:
        p95 = percentile(run.decodable_ms, 0.95)
        return f"p95 ≤ {DECODABLE_TARGET_MS:.0f}", p95 <= DECODABLE_TARGET_MS, ""

    def latency(run: ClientsRun) -> tuple[str, float, bool]:
        mid = median(run.latencies_ms)
        return f"{_num(mid)} / {_num(percentile(run.latencies_ms, 0.95))}", mid, False

    def latency_target(n: int, run: ClientsRun) -> Verdict:
        p95 = percentile(run.latencies_ms, 0.95)
        return f"p95 ≤ {LATENCY_TARGET_MS:.0f}", p95 <= LATENCY_TARGET_MS, ""

    def rss(run: ClientsRun) -> tuple[str, float, bool]:
        return f"{run.rss_mb_max:.0f}", run.rss_mb_max, False

    def rss_target(n: int, run: ClientsRun) -> Verdict:
        return f"≤ {RSS_TARGET_MB:.0f} MB", run.rss_mb_max <= RSS_TARGET_MB, ""

    add("Fan-out CPU, CPU-s per client-minute (± 1 sd)", cpu, cpu_target)
    add("Fan-out CPU, Vigil's event-loop thread only (peer: whole process)", loop_cpu, loop_target)
    add("Frames lost per client, mean (max)", lost, lost_target)
    add("PLAY → first decodable frame, ms (median / p95)", decodable, decodable_target)
    add("Capture → client latency, ms (median / p95)", latency, latency_target)
    if RSS_CLIENTS in counts:
        add("Resident memory, MB (max in window)", rss, rss_target, only=RSS_CLIENTS)
    return rows


def context(vigil: ServerFigures, peer: ServerFigures) -> list[str]:
    def base(figures: ServerFigures) -> str:
        b = figures.baseline
        return (
            f"{b.cpu_rate * 100:.1f} % of a core ({b.before * 100:.1f} before the runs, "
            f"{b.after * 100:.1f} after)"
        )

    lines = [
        "- `*`: a CPU figure within two standard deviations of zero, so its ratio is loose.",
        f"- No-client baseline CPU: Vigil {base(vigil)}: capture and main + sub encoding; "
        f"gst-rtsp-server {base(peer)}: its relay pipeline, prepared and running. Fan-out CPU "
        "is each server's CPU above the mean of its own two baselines; its ± is one standard "
        "deviation of the baselines' 5 s blocks (conservative: not scaled to the window).",
        f"- No-client RSS: Vigil {vigil.baseline.rss_mb:.0f} MB, "
        f"gst-rtsp-server {peer.baseline.rss_mb:.0f} MB (the peer neither captures nor "
        "encodes, so the memory ratio is context, not a target).",
    ]
    if TARGET_CLIENTS in vigil.runs and TARGET_CLIENTS in peer.runs:
        ours, theirs = vigil.runs[TARGET_CLIENTS], peer.runs[TARGET_CLIENTS]
        difference = ours.fanout_cpu_s_per_client_minute - theirs.fanout_cpu_s_per_client_minute
        sd = math.hypot(vigil.baseline.noise(), peer.baseline.noise()) * 60 / TARGET_CLIENTS
        verdict = "within" if abs(difference) <= 2 * sd else "outside"
        loop_ratio = ours.main_thread_fanout_rate / theirs.fanout_rate
        lines.append(
            f"- Fan-out CPU at {TARGET_CLIENTS} clients, Vigil minus peer: {difference:+.3f} "
            f"CPU-s per client-minute, combined noise ± {sd:.3f} (1 sd): {verdict} 2 sd. "
            f"Vigil's event-loop thread alone against the peer: {loop_ratio:.2f}x."
        )
    for n, run in sorted(vigil.runs.items()):
        others = (run.fanout_rate - run.main_thread_fanout_rate) * 100
        lines.append(
            f"- Vigil's event-loop thread alone (hub and RTSP sessions, without the encoder "
            f"threads), {_clients(n)}: +{run.main_thread_fanout_rate * 100:.1f} % of a core, "
            f"{run.main_thread_fanout_rate * 60 / n:.3f} CPU-s per client-minute; all other "
            f"threads (capture, encoders) {others:+.1f} % against their baseline"
        )
    for figures in (vigil, peer):
        for n, run in sorted(figures.runs.items()):
            rates = run.frame_rates
            kbps = run.bitrates_kbps
            extra = ""
            if run.hop_ms:
                extra = (
                    f"; relay hop {median(run.hop_ms):.1f} / {percentile(run.hop_ms, 0.95):.1f} ms "
                    f"(median / p95), {run.matched * 100:.0f} % of frames matched"
                )
            failures = f"; {len(run.failures)} client failures" if run.failures else ""
            lines.append(
                f"- {figures.name}, {_clients(n)}: {min(rates):.2f} to {max(rates):.2f} frames/s, "
                f"{median(kbps):.0f} kbit/s per client; server CPU {run.cpu_rate * 100:.1f} % "
                f"of a core; bench client {run.bench_cpu_pct:.0f} % CPU, loop lag p99 "
                f"{run.lag_p99_ms:.1f} ms (max {run.lag_max_ms:.0f}); whole machine busy "
                f"{run.host_busy_cores:.2f} cores{extra}{failures}"
            )
    return lines


def markdown(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for index, row in enumerate(rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        out.append("| " + " | ".join(cells) + " |")
        if index == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)
