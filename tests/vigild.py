"""Run a real `vigild` process for tests: temp data dir, free loopback ports, clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.auth import HTTPDigestAuth

ADMIN_PASSWORD = "Vigil-Test-2026"
REPO = Path(__file__).resolve().parents[1]


_handed_out: set[int] = set()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free now and not handed out before in this process: the kernel may give a port
    just released to the next probe, and one device's HTTP and RTSP ports must differ."""
    while True:
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


@dataclass
class Vigild:
    data_dir: Path
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    rtsp_port: int = field(default_factory=free_port)
    sadp_port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    extra_args: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def args(self) -> list[str]:
        return [
            sys.executable, "-m", "vigil", "--board", "sim", "--data-dir", str(self.data_dir),
            "--bind", "127.0.0.1", "--http-port", str(self.http_port),
            "--https-port", str(self.https_port), "--rtsp-port", str(self.rtsp_port),
            "--sadp-port", str(self.sadp_port), *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 20) -> Vigild:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.extra_env}
        self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            self.wait_serving(timeout)
        except TimeoutError:
            self.proc.kill()  # a daemon that never served must not outlive the test
            self.proc.wait()
            raise
        return self

    def wait_serving(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"vigild exited {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(requests.ConnectionError):
                requests.get(f"{self.url}/SDK/activateStatus", timeout=1)
                return
            time.sleep(0.1)
        raise TimeoutError(f"vigild did not serve within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # its threads' stacks go to the log
            time.sleep(1)
            self.proc.kill()
            raise RuntimeError(f"vigild did not stop within {timeout}s:\n{self.output()}") from None

    def activate(self, password: str = ADMIN_PASSWORD) -> None:
        body = f"<ActivateInfo><password>{password}</password></ActivateInfo>"
        reply = requests.put(f"{self.url}/ISAPI/System/activate", data=body, timeout=5)
        assert reply.status_code == 200, reply.text

    def session(self, user: str = "admin", password: str = ADMIN_PASSWORD) -> requests.Session:
        session = requests.Session()
        session.auth = HTTPDigestAuth(user, password)
        return session

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.session().get(f"{self.url}{path}", timeout=10, **kwargs)  # type: ignore[arg-type]

    def put(self, path: str, body: str | bytes, **kwargs: object) -> requests.Response:
        return self.session().put(f"{self.url}{path}", data=body, timeout=10, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, body: str | bytes, **kwargs: object) -> requests.Response:
        return self.session().post(f"{self.url}{path}", data=body, timeout=10, **kwargs)  # type: ignore[arg-type]
