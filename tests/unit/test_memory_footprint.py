"""The daemon's memory footprint: its process-wide memory settings."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_transparent_huge_pages_are_off_for_the_process_and_its_children() -> None:
    # In a child: the setting cannot be undone, and pytest's own process should keep its own.
    probe = (
        "import subprocess; "
        "from vigil.system.memory import disable_transparent_huge_pages; "
        "assert disable_transparent_huge_pages(); "
        "print(open('/proc/self/status').read()); "
        "print(subprocess.run(['cat', '/proc/self/status'], capture_output=True, text=True).stdout)"
    )
    status = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    flags = [line.split()[1] for line in status.splitlines() if line.startswith("THP_enabled:")]
    if not flags:
        pytest.skip("this kernel does not report THP_enabled in /proc/<pid>/status")
    assert flags == ["0", "0"]
