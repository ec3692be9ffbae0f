"""Two network namespaces joined by a veth pair, for discovery tests that use real multicast.

"cam" (10.213.7.1) holds the device side, "client" (10.213.7.2) the host tools. Both have a
route for 224.0.0.0/4 on the veth and loopback up; the client also has a default route on the
veth so that the limited broadcast 255.255.255.255 has a way out, as on any real host. Nothing
sent inside can reach the host's own interfaces. Needs root; the names carry the pid and a
random part, and `delete` removes both namespaces (and with them the veth pair).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

CAM_IP = "10.213.7.1"
CLIENT_IP = "10.213.7.2"
PREFIX = 24
CAM_IF = "cam0"
CLIENT_IF = "cli0"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENV_BIN = Path(sys.executable).parent


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespace tests need root")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (`ip`) is not installed")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=10, capture_output=True)


@dataclass(frozen=True)
class NetnsPair:
    cam: str
    client: str

    def exec_args(self, netns: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", netns, *argv]

    def run(
        self,
        netns: str,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 20,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.exec_args(netns, argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            cwd=REPO,  # helper processes run as `python -m tests.integration.…`
            check=False,
        )


@contextmanager
def netns_pair(tag: str) -> Iterator[NetnsPair]:
    require_root()
    unique = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    pair = NetnsPair(cam=f"vigil-{tag}-cam-{unique}", client=f"vigil-{tag}-cli-{unique}")
    created: list[str] = []
    try:
        for name in (pair.cam, pair.client):
            _ip("netns", "add", name)
            created.append(name)
        # Created directly inside the namespaces: the pair never exists on the host.
        _ip(
            "link", "add", CAM_IF, "netns", pair.cam, "type", "veth",
            "peer", "name", CLIENT_IF, "netns", pair.client,
        )  # fmt: skip
        for name, iface, address in (
            (pair.cam, CAM_IF, CAM_IP),
            (pair.client, CLIENT_IF, CLIENT_IP),
        ):
            _ip("-n", name, "addr", "add", f"{address}/{PREFIX}", "dev", iface)
            _ip("-n", name, "link", "set", iface, "up")
            _ip("-n", name, "link", "set", "lo", "up")
            _ip("-n", name, "route", "add", "224.0.0.0/4", "dev", iface)
        _ip("-n", pair.client, "route", "add", "default", "dev", CLIENT_IF)
        yield pair
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


class LineProcess:
    """A helper process in a namespace speaking JSON lines: events out on stdout, orders in."""

    def __init__(self, argv: Sequence[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=REPO,
        )
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.events.append(event)
            self._queue.put(event)
        self._queue.put(None)

    def wait_for(
        self, check: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if event is None:
                raise RuntimeError(f"helper exited {self.proc.wait()}:\n{self.log()}")
            if check(event):
                return event
        raise TimeoutError(f"no matching event within {timeout}s:\n{self.log()}")

    def send(self, order: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(order) + "\n")
        self.proc.stdin.flush()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        try:
            if self.proc.poll() is None:
                self.send({"order": "quit"})
            return self.proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            self.proc.kill()
            return self.proc.wait(timeout=10)
        finally:
            self._log.close()
