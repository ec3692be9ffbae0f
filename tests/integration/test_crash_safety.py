"""SIGKILL in the middle of config writes leaves the old or the new config, never a broken one."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.vigild import Vigild
from vigil.config.model import Config
from vigil.config.store import ConfigStore, parse_config

WRITER = textwrap.dedent(
    """
    import asyncio, dataclasses, sys
    from pathlib import Path
    from vigil.config.model import Config
    from vigil.config.store import ConfigStore

    async def main():
        store = ConfigStore(Path(sys.argv[1]), Config())
        name = store.load().device.name
        n = int(name[1:]) if name.startswith("n") else 0
        while True:
            n += 1
            # Vary the size too, so a torn write would show as a short or mixed file.
            device = dataclasses.replace(store.current.device, name=f"n{n}",
                                         location="x" * (n % 64))
            await store.replace(dataclasses.replace(store.current, device=device))
            print(n, flush=True)

    asyncio.run(main())
    """
)


def test_store_survives_sigkill_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    rng = random.Random(7)
    last = 0
    for _ in range(60):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert proc.stdout is not None
        proc.stdout.readline()  # at least one write has completed
        time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        config = parse_config(path.read_bytes())  # raises if torn
        number = int(config.device.name[1:])
        assert number > last  # every round completed at least one write, none was lost
        assert config.device.location == "x" * (number % 64)  # not a mix of two versions
        last = number
    ConfigStore(path, Config()).load()
    assert not list(tmp_path.glob(".*.tmp"))  # leftovers of killed writes are cleaned up


@pytest.mark.slow
def test_daemon_killed_during_api_writes(vigild_factory) -> None:  # type: ignore[no-untyped-def]
    device: Vigild = vigild_factory().start()
    device.activate()
    sent: list[str] = ["Vigil Camera"]
    rng = random.Random(11)
    for round_ in range(8):
        stop = threading.Event()

        def hammer(stop: threading.Event = stop, prefix: str = f"r{round_}") -> None:
            session = device.session()
            n = 0
            while not stop.is_set():
                name = f"{prefix}-{n}"
                sent.append(name)
                body = f"<DeviceInfo><deviceName>{name}</deviceName></DeviceInfo>"
                try:
                    session.put(f"{device.url}/ISAPI/System/deviceInfo", data=body, timeout=2)
                except requests.RequestException:
                    return
                n += 1

        writer = threading.Thread(target=hammer)
        writer.start()
        time.sleep(rng.uniform(0.3, 0.8))
        device.stop(signal.SIGKILL)
        stop.set()
        writer.join()
        config = parse_config((device.data_dir / "config.toml").read_bytes())
        assert config.device.name in sent
        device.start()
