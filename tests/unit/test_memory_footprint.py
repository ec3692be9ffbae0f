"""The daemon's memory footprint: what it leaves out, and its process-wide memory settings.

numpy and linuxpy are for a V4L2 sensor only, cryptography for making keys (in a child process)
and opening sealed secrets; importing them at start would cost the daemon about 14 and 10 MB
resident (tests/bench measures it), so a regression shows up here first.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

LAZY = ("numpy", "linuxpy", "cryptography")


def test_the_daemon_imports_neither_numpy_nor_linuxpy_nor_cryptography() -> None:
    probe = f"import sys, vigil.daemon; print(' '.join(m for m in {LAZY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert loaded == []


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
