"""What the recording benchmark stands on: the clip, the cards, the processes, the counts.

- The clip: 60 s of 1080p25 H.264 at about 4 Mbit/s (libx264, GOP 50, no B-frames, parameter
  sets on every keyframe: a camera's main stream), encoded once into a cache directory.
- A `Card`: an ext4 file system on a loop device, formatted and mounted exactly as Vigil's
  storage does a card (`MKFS_ARGS`, `MOUNT_OPTIONS`; no lazy init, which would write in the
  background). Its image lives in /dev/shm, so the card is RAM-backed: fsync costs no disk
  latency and the runs neither wait for nor disturb the host's disk; what the file system
  sends to the device is counted by the loop device itself (`/sys/block/loopN/stat`).
- A `Program`: a recording process, whose CPU time is read from /proc.
- `probe_media`: the access unit bytes in recorded files, by ffprobe, the same way for both
  sides (MP4 sample sizes: 4-byte length prefixes in place of 4-byte start codes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from vigil.record.storage import MKFS_ARGS, MOUNT_OPTIONS, READ_ONLY_MOUNT_OPTIONS

CLIP_SECONDS = 60
CLIP_FPS = 25
CLIP_GOP = 50
CLIP_KBPS = 4096
CLIP_SIZE = (1920, 1080)
SECTOR = 512
BLOCK = 4096  # MKFS_ARGS: -b 4096
REPO = Path(__file__).resolve().parents[2]
TOOLS = ("ffmpeg", "ffprobe", "unshare", "losetup", "mount", "umount", "sync", "mkfs.ext4")


class RigError(Exception):
    """The rig could not be set up or a process misbehaved: nothing to measure."""


def run(command: Sequence[str], timeout: float = 120) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RigError(f"{' '.join(command)}: {result.stderr.strip()[-500:]}")
    return result.stdout


def check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise RigError("the recording bench needs root (loop devices, mkfs, mount)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise RigError(f"missing tools: {', '.join(missing)}")


# -- the clip ------------------------------------------------------------------------------
def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vigil-bench"


def prepare_clip(cache: Path) -> Path:
    """The clip, encoded on first use. A noisy test pattern, so that libx264 really spends
    the bit rate (a clean pattern would come out far below it)."""
    width, height = CLIP_SIZE
    name = f"clip-{height}p{CLIP_FPS}-{CLIP_KBPS}k-gop{CLIP_GOP}-{CLIP_SECONDS}s.h264"
    clip = cache / name
    if clip.exists():
        return clip
    cache.mkdir(parents=True, exist_ok=True)
    print(f"encoding the {CLIP_SECONDS} s clip once into {clip} (about a minute)", flush=True)
    partial = clip.with_suffix(".partial")
    run(
        [
            "ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi",
            "-i", f"testsrc2=size={width}x{height}:rate={CLIP_FPS},noise=alls=10:allf=t",
            "-t", str(CLIP_SECONDS), "-c:v", "libx264", "-preset", "veryfast",
            "-profile:v", "main", "-pix_fmt", "yuv420p", "-bf", "0",
            "-g", str(CLIP_GOP), "-keyint_min", str(CLIP_GOP), "-sc_threshold", "0",
            "-b:v", f"{CLIP_KBPS}k", "-maxrate", f"{CLIP_KBPS}k", "-bufsize", f"{CLIP_KBPS}k",
            "-f", "h264", str(partial),
        ],
        timeout=900,
    )  # fmt: skip
    partial.rename(clip)
    return clip


# -- the cards -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Journal:
    """The ext4 journal since the mount: jbd2's full commits (averages are whole blocks) and
    ext4's fast commits (`fast_commit`: an fsync of a file whose change is a plain append logs
    just that inode's new range in the fast-commit area, a block or so, not a transaction)."""

    commits: int = 0
    logged_blocks: int = 0  # per commit, descriptor and commit blocks included
    fast_commits: int = 0
    fast_blocks: int = 0  # in all

    @property
    def bytes(self) -> int:
        return (self.commits * self.logged_blocks + self.fast_blocks) * BLOCK

    @property
    def all_commits(self) -> int:
        return self.commits + self.fast_commits


def _numbers(path: Path, *patterns: str) -> tuple[int, ...] | None:
    """The first number each pattern captures in a /proc statistics file; None if any is missing."""
    with contextlib.suppress(OSError):
        text = path.read_text()
        found = [re.search(pattern, text, re.M) for pattern in patterns]
        if all(found):
            return tuple(int(match.group(1)) for match in found if match)
    return None


class Card:
    """An ext4 card on a RAM-backed loop device, formatted and mounted as Vigil does."""

    def __init__(self, name: str, size_bytes: int, mount_point: Path) -> None:
        self.name = name
        self.size_bytes = size_bytes
        self.mount_point = mount_point
        self.image: Path | None = None
        self.device = ""
        self.mounted = False
        self._start_sectors = 0

    def create(self) -> None:
        fd, path = tempfile.mkstemp(prefix=f"vigil-bench-{self.name}-", dir="/dev/shm")
        os.close(fd)
        self.image = Path(path)
        os.truncate(self.image, self.size_bytes)  # sparse: RAM is taken as it is written
        self.device = run(["losetup", "--find", "--show", str(self.image)]).strip()
        run([*MKFS_ARGS, self.device], timeout=300)
        self.mount_point.mkdir(parents=True, exist_ok=True)
        self.mount()

    def mount(self, read_only: bool = False) -> None:
        options = READ_ONLY_MOUNT_OPTIONS if read_only else MOUNT_OPTIONS
        run(["mount", "-t", "ext4", "-o", options, self.device, str(self.mount_point)])
        self.mounted = True

    def unmount(self) -> None:
        if self.mounted:
            run(["umount", str(self.mount_point)])
            self.mounted = False

    def _stat(self) -> list[int]:
        return [
            int(n) for n in Path(f"/sys/block/{Path(self.device).name}/stat").read_text().split()
        ]

    def sectors_written(self) -> int:
        """Sectors the file system has sent to the device since the loop device was set up."""
        return self._stat()[6]

    def journal(self) -> Journal:
        """What the journal has committed since the mount (read while it is mounted)."""
        name = Path(self.device).name
        full = _numbers(
            Path(f"/proc/fs/jbd2/{name}-8/info"),
            r"^(\d+) transactions", r"(\d+) logged blocks per transaction",
        )  # fmt: skip
        fast = _numbers(Path(f"/proc/fs/ext4/{name}/fc_info"), r"^(\d+) commits", r"^(\d+) numblks")
        return Journal(*(full or (0, 0)), *(fast or (0, 0)))

    def start_counting(self) -> None:
        """After the format and the mount: flush what they left, then take the baseline."""
        run(["sync", "-f", str(self.mount_point)])
        self._start_sectors = self.sectors_written()

    def bytes_written(self) -> int:
        """Bytes written since `start_counting`, once everything is on the device: the final
        sync, and the unmount, which also writes the journal's metadata to its home blocks."""
        run(["sync", "-f", str(self.mount_point)])
        self.unmount()
        self.wait_released()
        return (self.sectors_written() - self._start_sectors) * SECTOR

    def wait_released(self, timeout: float = 30.0) -> None:
        """Until the file system is really gone: `umount` returns at once if another mount
        namespace still holds a copy of the mount, and the last writes come when it lets go."""
        alive = Path(f"/proc/fs/ext4/{Path(self.device).name}")
        deadline = time.monotonic() + timeout
        while alive.exists():
            if time.monotonic() > deadline:
                raise RigError(f"{self.device} is still mounted somewhere after {timeout:.0f} s")
            time.sleep(0.05)

    def destroy(self) -> None:
        with contextlib.suppress(RigError):
            self.unmount()
        if self.device:
            with contextlib.suppress(RigError):
                run(["losetup", "-d", self.device])
            self.device = ""
        if self.image is not None:
            self.image.unlink(missing_ok=True)
            self.image = None


# -- the recording processes --------------------------------------------------------------
@dataclass
class Program:
    """A recording process (Vigil's, or one ffmpeg), started from the repository's root."""

    process: asyncio.subprocess.Process

    @classmethod
    async def start(cls, command: Sequence[str], log: Path, *, pipes: bool = False) -> Program:
        """`pipes`: stdin and stdout are pipes (the line protocol); else stdout goes to `log`."""
        pipe = asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL
        with log.open("ab") as stderr:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=pipe, stdout=pipe if pipes else stderr, stderr=stderr, cwd=REPO
            )
        return cls(process)

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU of the program, all its threads, and its reaped children."""
        times = psutil.Process(self.pid).cpu_times()
        return times.user + times.system + times.children_user + times.children_system

    async def wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.kill()
            await self.process.wait()
            raise RigError(f"process {self.pid} did not stop within {timeout:.0f} s") from None

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


# -- what was recorded ---------------------------------------------------------------------
@dataclass
class Media:
    files: int = 0
    samples: int = 0  # access units in the files
    sample_bytes: int = 0  # their bytes, as stored (length-prefixed NAL units)
    errors: int = 0  # files ffprobe could not read
    file_bytes: int = 0  # the media files' sizes
    other_bytes: int = 0  # the sizes of the other files (Vigil's index)


def probe_file(path: Path) -> tuple[int, int] | None:
    result = subprocess.run(
        [
            "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=size",
            "-of", "csv=p=0", str(path),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        return None
    sizes = [int(line) for line in result.stdout.split() if line.strip().isdigit()]
    return len(sizes), sum(sizes)


def probe_media(root: Path) -> Media:
    media = Media()
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix != ".mp4":
            media.other_bytes += path.stat().st_size
            continue
        media.files += 1
        media.file_bytes += path.stat().st_size
        found = probe_file(path)
        if found is None:
            media.errors += 1
            continue
        media.samples += found[0]
        media.sample_bytes += found[1]
    return media
