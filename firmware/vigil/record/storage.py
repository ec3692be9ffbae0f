"""Storage media: finds the card, formats and mounts it, reports its state and watches it in use.

One `StorageManager` per daemon owns the card slots of the board (`[storage]` in board.toml):

- `linux`: the listed block devices, found through sysfs; a whole device with partitions is
  used through its first partition (an SD card keeps its factory, erase-block aligned layout).
- `sim`: a card image `<data_dir>/sim-card.img` on a loop device when the machine allows it
  (root, /dev/loop-control, losetup), else a plain directory `<data_dir>/sim-card/`. Attaching
  the image is inserting the card; `losetup -d` (or `umount -l` + `losetup -d`) is pulling it.

A card is usable when it holds an ext4 file system labelled `VIGIL`; anything else is
`uninitialized` until it is formatted. A usable card is mounted at the slot's mount point with
`record/` and `picture/` directories. The states (SPEC §4) are those of `CardState`.

A supervised asyncio task looks at every card once a second; all of it runs in a worker
thread and is cheap: sysfs and /proc/self/mountinfo reads, statvfs, one 4 KiB direct read of
the device (reads do not wear flash; a write probe every second would, so writes are probed
only when a card is mounted). It notices a card that is gone, unmounted behind our back,
failing reads, or turned read-only by ext4 after errors: the card is lazily unmounted and
`diskerror` is raised until a usable card is back, which is picked up on its own.

`diskfull`: a card is `full` when less than 1 % of it is free (and `normal` again from 2 %, so
a recorder that overwrites around the threshold does not make the state flicker). The event is
raised only while overwrite is off (SPEC §4: with overwrite on, a full card is the steady state
and the recorder deletes the oldest footage). The recorder decides what to do; this module
only reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import inspect
import logging
import mmap
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vigil.board.description import BoardStorage
from vigil.config.model import StorageSettings
from vigil.system.supervise import supervise

log = logging.getLogger(__name__)

VIGIL_LABEL = "VIGIL"
RECORD_DIR = "record"
PICTURE_DIR = "picture"
# Under /run (a tmpfs): a device's root is read-only, so no mount point can be made in /media.
BOARD_MOUNT_POINT = "/run/media/vigil"
SIM_IMAGE_NAME = "sim-card.img"
SIM_DIRECTORY_NAME = "sim-card"
# nodev/nosuid/noexec: nothing on a removable card is run or treated as a device. noatime:
# reads (playback, search) cost no writes. commit=10: the recorder fsyncs what must survive a
# power cut, so the periodic journal commit only covers what nobody waits for; 10 s instead of
# 5 s halves the idle commits on flash. errors=remount-ro: a failing card stops taking writes
# at once, which the monitor sees and reports, instead of ext4 carrying on over a broken card.
MOUNT_OPTIONS = "noatime,nodev,nosuid,noexec,commit=10,errors=remount-ro"
READ_ONLY_MOUNT_OPTIONS = "ro,noatime,nodev,nosuid,noexec"
# -m 0: no root-reserved blocks (the daemon is the only writer). -b 4096 -i 65536: 4 KiB blocks
# also on small cards, one inode per 64 KiB (recordings are large files; pictures ~100 KiB),
# which keeps inode tables small. No lazy init: the inode tables and journal are written now,
# so the format's progress is real and the kernel does not write the card in the background
# for minutes after the first mount (it would skew the recorder's write figures).
# fast_commit: the recorder fsyncs every file once a second; after a plain append ext4 then
# logs only that inode's new range (about one block) instead of a full journal transaction
# (six or seven blocks), which takes the card's writes from ~1.08 to ~1.04 bytes per byte of
# video (`make bench`). A compat feature: a kernel without it (< 5.10) mounts the card as is.
MKFS_ARGS = (
    "mkfs.ext4", "-F", "-L", VIGIL_LABEL, "-m", "0", "-b", "4096", "-i", "65536",
    "-O", "fast_commit", "-E", "lazy_itable_init=0,lazy_journal_init=0",
)  # fmt: skip
POLL_S = 1.0
RETRY_S = 5.0  # a present card in `error` is tried again this often
FULL_BELOW = 0.01
FULL_CLEARS_AT = 0.02
SUBSCRIBER_TIMEOUT_S = 10.0
UNMOUNT_ATTEMPTS = 5  # at 1 s intervals, for files a recorder is still closing
COMMAND_TIMEOUT_S = 60.0
START_TIMEOUT_S = 15.0
PROBE_BYTES = 4096
_MIB = 1024 * 1024


class CardState(enum.StrEnum):
    ABSENT = "absent"
    UNINITIALIZED = "uninitialized"  # present, but no ext4 file system labelled VIGIL
    NORMAL = "normal"
    ERROR = "error"
    FULL = "full"
    READ_ONLY = "read-only"  # write-protected: footage can be read, nothing is recorded
    FORMATTING = "formatting"


# States with the file system mounted and footage readable.
MOUNTED_STATES = frozenset({CardState.NORMAL, CardState.FULL, CardState.READ_ONLY})
# States in which recorders may write.
WRITABLE_STATES = frozenset({CardState.NORMAL, CardState.FULL})


@dataclass(frozen=True)
class CardStatus:
    """A card slot as the API and the recorders see it. Sizes in bytes."""

    id: int
    name: str  # "sd1", "emmc1", "local1"
    kind: str  # "SD" | "eMMC" | "local"
    device: str  # "/dev/mmcblk0p1", "/dev/loop3"; "" for a directory or no card
    state: CardState
    capacity: int
    free: int
    mount_point: Path
    read_only: bool
    format_percent: int  # 0-100 while formatting; 100 after a format that succeeded
    record_quota: int
    picture_quota: int
    detail: str  # why the card is in `error`; "" otherwise

    @property
    def root(self) -> Path | None:
        """Where footage goes while the card takes writes (None otherwise)."""
        return self.mount_point if self.state in WRITABLE_STATES else None


class StorageError(Exception):
    """A storage request that cannot be carried out; `reason` says why, for the API."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "notFound" | "absent" | "busy" | "readOnly"
        self.message = message


StateListener = Callable[[CardStatus], Awaitable[None] | None]
# (event type "diskerror" | "diskfull", active, details)
EventListener = Callable[[str, bool, str], None]


# -- pure helpers (unit-tested) ------------------------------------------------------------------
@dataclass(frozen=True)
class MountEntry:
    mount_point: str
    major_minor: tuple[int, int]
    source: str
    fstype: str
    read_only: bool


def _unescape_mountinfo(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040 ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> dict[str, MountEntry]:
    """/proc/self/mountinfo -> {mount point: entry}; a later mount over the same point wins."""
    mounts: dict[str, MountEntry] = {}
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
            major, minor = (int(n) for n in fields[2].split(":"))
            point = _unescape_mountinfo(fields[4])
            per_mount, fstype = fields[5].split(","), fields[dash + 1]
            source, super_options = fields[dash + 2], fields[dash + 3].split(",")
        except (ValueError, IndexError):
            continue  # not a line this parser understands; the rest still count
        read_only = "ro" in per_mount or "ro" in super_options
        mounts[point] = MountEntry(
            point, (major, minor), _unescape_mountinfo(source), fstype, read_only
        )
    return mounts


class MkfsProgress:
    """mke2fs's console output -> a format percentage (0-95; the mount after it makes 100).

    mke2fs names each phase and, for the long ones, counts groups as `n/total` rewritten in
    place with backspaces. Each phase is given a share of the bar by its usual duration.
    """

    PHASES = (
        ("Discarding device blocks", 0, 10),
        ("Allocating group tables", 10, 20),
        ("Writing inode tables", 20, 80),
        ("Creating journal", 80, 88),
        ("Writing superblocks", 88, 95),
    )
    DONE = 95

    def __init__(self) -> None:
        self.percent = 0
        self._phase: tuple[str, int, int] | None = None
        self._pending = ""

    def feed(self, text: str) -> int:
        """Take more output; the percentage so far (never decreasing)."""
        pieces = re.split(r"[\b\r\n]+", self._pending + text)
        self._pending = pieces.pop()  # may be the start of a longer piece
        for piece in pieces:
            self._take(piece)
        self._take(self._pending, final=False)
        return self.percent

    def _take(self, piece: str, *, final: bool = True) -> None:
        for phase in self.PHASES:
            if phase[0] in piece:
                self._phase = phase
                self._advance(phase[1])
        if self._phase is None:
            return
        _, start, end = self._phase
        counter = re.search(r"(\d+)/(\d+)\s*$", piece)
        if counter and int(counter.group(2)) > 0:
            done, total = int(counter.group(1)), int(counter.group(2))
            self._advance(start + (end - start) * min(done, total) // total)
        elif final and "done" in piece:
            self._advance(end)

    def _advance(self, percent: int) -> None:
        self.percent = max(self.percent, min(percent, self.DONE))


def classify_space(capacity: int, free: int, was_full: bool) -> bool:
    """Whether a mounted card counts as full, with hysteresis (see the module docstring)."""
    if capacity <= 0:
        return False
    share = free / capacity
    return share < FULL_CLEARS_AT if was_full else share < FULL_BELOW


# -- slots: where a card is and how to reach it (blocking; called in worker threads) -------------
class _FormatRefused(Exception):
    """The card cannot be formatted now but is as it was (e.g. files still open on it)."""


class SlotUnavailable(Exception):
    """The slot cannot work on this machine (e.g. no loop devices); the message says why."""


class Slot(Protocol):
    kind: str

    def setup(self) -> None: ...

    def teardown(self) -> None: ...

    def locate(self) -> str | None:
        """The device node of the card in the slot, or None when there is none."""
        ...

    def pulled(self, device: str) -> bool:
        """Whether the card is being removed while still mounted (loop: deferred detach)."""
        ...


def _sysfs(device: str) -> Path:
    return Path("/sys/class/block") / Path(device).name


def _read_sysfs(path: Path, default: str = "") -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return default


def _run(
    args: Sequence[str], timeout: float = COMMAND_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)


def _command_error(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr or result.stdout or "").strip().splitlines()
    return text[-1] if text else f"exit status {result.returncode}"


class BlockSlot:
    """A card reader or eMMC partition of a real board, found through sysfs."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.kind = "local"

    def setup(self) -> None:
        self.kind = self._kind()

    def teardown(self) -> None:
        pass

    def locate(self) -> str | None:
        sysfs = _sysfs(self.device)
        if not sysfs.exists():
            return None
        partitions = sorted(
            (p.name for p in sysfs.iterdir() if (p / "partition").exists()),
            key=lambda name: int(_read_sysfs(sysfs / name / "partition", "0") or 0),
        )
        node = f"/dev/{partitions[0]}" if partitions else self.device
        return node if os.path.exists(node) else None

    def pulled(self, device: str) -> bool:
        return False  # a real card that is pulled disappears from sysfs

    def _kind(self) -> str:
        card_type = _read_sysfs(_sysfs(self.device) / "device" / "type")
        return {"SD": "SD", "MMC": "eMMC"}.get(card_type, "local")


class LoopSlot:
    """The simulated card: an image file on a loop device, or a loop device handed to us."""

    kind = "SD"

    def __init__(self, image: Path | None, size_mb: int, device: str | None = None) -> None:
        self.image = image.absolute() if image is not None else None
        self.size_mb = size_mb
        self.device = device  # a given loop device: used as is, never attached or detached

    def setup(self) -> None:
        if self.device is not None:
            return
        assert self.image is not None
        if os.geteuid() != 0 or not Path("/dev/loop-control").exists():
            raise SlotUnavailable("not root or no loop device support")
        missing = [t for t in ("losetup", "blkid", "mkfs.ext4") if shutil.which(t) is None]
        if missing:
            raise SlotUnavailable(f"{', '.join(missing)} missing (util-linux, e2fsprogs)")
        if not self.image.exists():
            self.image.parent.mkdir(parents=True, exist_ok=True)
            with self.image.open("xb") as image:
                image.truncate(self.size_mb * _MIB)  # sparse: costs no disk until written
            log.info("made a %d MB simulated card image %s", self.size_mb, self.image)
        if self._backing_loops():
            return  # still attached by an earlier run that was killed: the card is in
        result = _run(["losetup", "--find", "--show", str(self.image)])
        if result.returncode != 0:
            raise SlotUnavailable(f"losetup failed: {_command_error(result)}")

    def teardown(self) -> None:
        if self.device is not None:
            return
        for loop in self._backing_loops():
            result = _run(["losetup", "-d", loop])
            if result.returncode != 0:
                log.warning("could not detach %s: %s", loop, _command_error(result))

    def locate(self) -> str | None:
        if self.device is not None:
            attached = (_sysfs(self.device) / "loop" / "backing_file").exists()
            return self.device if attached and os.path.exists(self.device) else None
        loops = self._backing_loops()
        return loops[0] if loops else None

    def pulled(self, device: str) -> bool:
        # `losetup -d` on a mounted loop device only marks it to go at the last close.
        return _read_sysfs(_sysfs(device) / "loop" / "autoclear") == "1"

    def _backing_loops(self) -> list[str]:
        assert self.image is not None
        wanted = os.path.realpath(self.image)
        found = []
        for backing in Path("/sys/class/block").glob("loop*/loop/backing_file"):
            if _read_sysfs(backing) == wanted:  # " (deleted)" suffix: the image is gone
                found.append(f"/dev/{backing.parent.parent.name}")
        return sorted(found, key=lambda d: int(d.removeprefix("/dev/loop") or 0))


class DirectorySlot:
    """The simulated card where loop devices cannot be had: a directory, always present."""

    kind = "local"

    def __init__(self, path: Path) -> None:
        self.path = path

    def setup(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def teardown(self) -> None:
        pass

    def locate(self) -> str | None:
        return ""  # present, no device node

    def pulled(self, device: str) -> bool:
        return False


# -- one card slot -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CardSlot:
    """One slot for the manager: where the card is, where it is mounted, and what to use
    instead when the slot cannot work on this machine (the simulator's directory card)."""

    slot: Slot
    mount_point: Path
    fallback: DirectorySlot | None = None


@dataclass
class _Observation:
    device: str | None
    size: int = 0
    device_read_only: bool = False
    pulled: bool = False
    mount: MountEntry | None = None
    rdev: tuple[int, int] | None = None
    read_error: str = ""
    capacity: int = 0
    free: int = 0


class _Card:
    """The state of one slot; its blocking work runs in worker threads, its state changes on
    the event loop (one at a time: the monitor and a format hold `lock`)."""

    def __init__(self, card_id: int, spec: CardSlot) -> None:
        self.id = card_id
        self.slot: Slot = spec.slot
        self.fallback = spec.fallback
        self.mount_point = spec.mount_point
        self.lock = asyncio.Lock()
        self.state = CardState.ABSENT
        self.device = ""
        self.capacity = self.free = 0
        self.device_read_only = False
        self.format_percent = 0
        self.detail = ""
        self.mounted = False  # our file system is mounted at mount_point
        self.disk_error = False  # diskerror raised and not yet cleared
        self.disk_full = False  # diskfull raised and not yet cleared
        # A writer ran out of space (ENOSPC) with this much free: see `out_of_space`.
        self.no_space_at: int | None = None
        self.retry_at = 0.0
        # A loop device handed in may have been attached with autoclear already set (mount -o
        # loop does that); only a change of the flag while in use means "being pulled".
        self.autoclear_at_bring_up = False

    @property
    def is_directory(self) -> bool:
        return isinstance(self.slot, DirectorySlot)

    @property
    def name(self) -> str:
        return f"{self.slot.kind.lower()}{self.id}"

    @property
    def root(self) -> Path:
        """Where the card's file system is: the mount point, or the directory card itself."""
        return self.slot.path if isinstance(self.slot, DirectorySlot) else self.mount_point

    @property
    def where(self) -> str:
        return self.device or (str(self.root) if self.is_directory else "empty slot")

    # -- blocking parts --------------------------------------------------------------------
    def observe(self, *, probe_io: bool) -> _Observation:
        if isinstance(self.slot, DirectorySlot):
            capacity, free = _space(self.slot.path)
            return _Observation("", capacity=capacity, free=free)
        device = self.slot.locate()
        if device is None:
            return _Observation(None)
        sysfs = _sysfs(device)
        obs = _Observation(
            device,
            size=int(_read_sysfs(sysfs / "size", "0") or 0) * 512,
            device_read_only=_read_sysfs(sysfs / "ro") == "1",
            pulled=self.slot.pulled(device),
        )
        with contextlib.suppress(OSError):
            rdev = os.stat(device).st_rdev
            obs.rdev = (os.major(rdev), os.minor(rdev))
        obs.mount = _mounts().get(str(self.mount_point))
        if probe_io:
            obs.read_error = _read_probe(device)
        if obs.mount is not None and obs.mount.major_minor == obs.rdev:
            with contextlib.suppress(OSError):
                obs.capacity, obs.free = _space(self.mount_point)
        return obs

    def bring_up(self, device: str, device_read_only: bool) -> tuple[CardState, str]:
        """Probe the card and, if it is ours, mount it: the state it is in, and why."""
        if isinstance(self.slot, DirectorySlot):
            try:
                for sub in (RECORD_DIR, PICTURE_DIR):
                    (self.slot.path / sub).mkdir(parents=True, exist_ok=True)
                _write_probe(self.slot.path)
            except OSError as exc:
                return CardState.ERROR, f"directory {self.slot.path}: {exc.strerror or exc}"
            return CardState.NORMAL, ""
        fs_type, label = _probe_filesystem(device)
        if fs_type != "ext4" or label != VIGIL_LABEL:
            found = f"{fs_type or 'no file system'}" + (f" labelled {label!r}" if label else "")
            return CardState.UNINITIALIZED, found
        error = self._mount(device, device_read_only)
        if error:
            return CardState.ERROR, error
        self.mounted = True
        if device_read_only:
            return CardState.READ_ONLY, ""
        try:
            for sub in (RECORD_DIR, PICTURE_DIR):
                (self.mount_point / sub).mkdir(exist_ok=True)
            _write_probe(self.mount_point)
        except OSError as exc:
            self.release(lazy=True)
            return CardState.ERROR, f"cannot write the card: {exc.strerror or exc}"
        return CardState.NORMAL, ""

    def _mount(self, device: str, read_only: bool) -> str:
        """Mount the card (or adopt the mount a killed earlier run left); '' or the error."""
        self.mount_point.mkdir(parents=True, exist_ok=True)
        current = _mounts().get(str(self.mount_point))
        if current is not None:
            try:
                rdev = os.stat(device).st_rdev
            except OSError as exc:
                return f"{device}: {exc.strerror}"
            if current.major_minor == (os.major(rdev), os.minor(rdev)):
                log.info("card %d: %s is already mounted at %s", self.id, device, self.mount_point)
                return ""
            return f"{self.mount_point} is in use by {current.source}"
        options = READ_ONLY_MOUNT_OPTIONS if read_only else MOUNT_OPTIONS
        result = _run(["mount", "-t", "ext4", "-o", options, device, str(self.mount_point)])
        return "" if result.returncode == 0 else f"mount failed: {_command_error(result)}"

    def release(self, *, lazy: bool) -> bool:
        """Unmount our file system; True when it is no longer mounted there."""
        if isinstance(self.slot, DirectorySlot):
            return True
        if str(self.mount_point) not in _mounts():
            self.mounted = False
            return True
        result = _run(["umount", *(["-l"] if lazy else []), str(self.mount_point)])
        if result.returncode != 0:
            log.debug("umount %s: %s", self.mount_point, _command_error(result))
            return False
        self.mounted = False
        return True

    def wipe_directory(self, progress: Callable[[int], None]) -> None:
        """The directory card's "format": its footage and pictures are deleted."""
        assert isinstance(self.slot, DirectorySlot)
        for step, sub in enumerate((RECORD_DIR, PICTURE_DIR)):
            shutil.rmtree(self.slot.path / sub, ignore_errors=True)
            progress(45 * (step + 1))


def _mounts() -> dict[str, MountEntry]:
    try:
        return parse_mountinfo(Path("/proc/self/mountinfo").read_text(encoding="utf-8"))
    except OSError:
        return {}


def _space(path: Path) -> tuple[int, int]:
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def _read_probe(device: str) -> str:
    """Read the card's first 4 KiB past the page cache: '' or the error it gave."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECT", 0)
    try:
        fd = os.open(device, flags)
    except FileNotFoundError:
        return ""  # gone: locate() reports that on the next look
    except OSError as exc:
        return f"cannot open {device}: {exc.strerror}"
    try:
        with mmap.mmap(-1, PROBE_BYTES) as buffer:  # page-aligned, as O_DIRECT wants
            os.preadv(fd, [buffer], 0)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return ""  # no direct I/O on this device: nothing learnt, nothing wrong
        return f"read error on {device}: {exc.strerror}"
    finally:
        os.close(fd)
    return ""


def _write_probe(root: Path) -> None:
    probe = root / ".vigil-probe"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"vigil")
        os.fsync(fd)
    finally:
        os.close(fd)
    probe.unlink()


def _probe_filesystem(device: str) -> tuple[str, str]:
    """(file system type, label) read from the device itself ('' when there is none)."""
    result = _run(["blkid", "-p", "-o", "export", device])
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return values.get("TYPE", ""), values.get("LABEL", "")


def _usage(root: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total


# -- the manager ---------------------------------------------------------------------------------
class StorageManager:
    """The board's card slots (hdd ids 1..n): state, format, quotas, monitoring."""

    def __init__(self, slots: Sequence[CardSlot], settings: Callable[[], StorageSettings]) -> None:
        self._cards = [_Card(i, spec) for i, spec in enumerate(slots, start=1)]
        self._settings = settings
        self._state_listeners: list[StateListener] = []
        self._event_listeners: list[EventListener] = []
        self._monitor: asyncio.Task[None] | None = None
        self._formats: set[asyncio.Task[None]] = set()
        self._first_look = asyncio.Event()
        self._stopping = asyncio.Event()

    @classmethod
    def for_board(
        cls,
        board: BoardStorage,
        data_dir: Path,
        settings: Callable[[], StorageSettings],
        *,
        sim_card: Path | None = None,
        sim_mode: str = "auto",
    ) -> StorageManager:
        """The slots `board` describes. sim: `sim_card` is an image file (made if missing)
        or a loop device to use instead of `<data_dir>/sim-card.img`; `sim_mode` "dir"
        forces the directory card."""
        base = Path(board.mount_point) if board.mount_point else None
        if board.driver == "linux":
            base = base or Path(BOARD_MOUNT_POINT)
            return cls(
                [
                    CardSlot(BlockSlot(device), base if i == 0 else Path(f"{base}-{i + 1}"))
                    for i, device in enumerate(board.devices)
                ],
                settings,
            )
        mount = base or data_dir / "card"
        directory = DirectorySlot(data_dir / SIM_DIRECTORY_NAME)
        if sim_mode == "dir":
            return cls([CardSlot(directory, mount)], settings)
        if sim_card is not None and _is_block_device(sim_card):
            loop = LoopSlot(None, board.image_size_mb, str(sim_card))
            return cls([CardSlot(loop, mount)], settings)
        image = LoopSlot(sim_card or data_dir / SIM_IMAGE_NAME, board.image_size_mb)
        return cls([CardSlot(image, mount, fallback=directory)], settings)

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Set the slots up and take the first look (bounded: a hung card does not hold up
        the daemon; the monitor carries on with it in the background)."""
        for card in self._cards:
            try:
                await asyncio.to_thread(card.slot.setup)
            except (SlotUnavailable, OSError, subprocess.SubprocessError) as exc:
                if card.fallback is None:
                    log.error("card %d: slot unusable: %s", card.id, exc)
                    continue
                log.warning(
                    "card %d: no loop device for the simulated card (%s); the card is the "
                    "directory %s",
                    card.id,
                    exc,
                    card.fallback.path,
                )
                card.slot = card.fallback
                await asyncio.to_thread(card.slot.setup)
        self._monitor = asyncio.create_task(self._supervise(), name="storage-monitor")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_look.wait(), START_TIMEOUT_S)

    async def stop(self) -> None:
        """Stop watching, end a running format, unmount every card and detach our loops."""
        # The monitor finishes the look it is taking (a mount in a worker thread cannot be
        # cancelled, and one finishing after the unmount below would stay behind).
        self._stopping.set()
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(monitor), COMMAND_TIMEOUT_S)
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
        for task in list(self._formats):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for card in self._cards:
            await asyncio.to_thread(self._shut, card)

    @staticmethod
    def _shut(card: _Card) -> None:
        if not card.release(lazy=False):
            card.release(lazy=True)
        try:
            card.slot.teardown()
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("card %d: %s", card.id, exc)

    # -- what others use -------------------------------------------------------------------
    def cards(self) -> list[CardStatus]:
        return [self._status(card) for card in self._cards]

    def card(self, card_id: int) -> CardStatus | None:
        card = self._find(card_id)
        return None if card is None else self._status(card)

    def root(self) -> Path | None:
        """Where footage goes now: the first card that takes writes (None: nowhere)."""
        return next((s.root for s in self.cards() if s.root is not None), None)

    def subscribe(self, listener: StateListener) -> None:
        """`listener(status)` on every state change of a card (awaited, if it is async, before
        the card is unmounted or formatted: a recorder closes its files then)."""
        self._state_listeners.append(listener)

    def subscribe_events(self, listener: EventListener) -> None:
        """`listener(type, active, details)` when `diskerror` or `diskfull` turns on or off."""
        self._event_listeners.append(listener)

    async def usage(self, card_id: int) -> dict[str, int]:
        """Bytes the footage and the pictures take on the card (0 when it is not mounted)."""
        status = self.card(card_id)
        if status is None:
            raise StorageError("notFound", f"there is no card {card_id}")
        if status.state not in MOUNTED_STATES:
            return {RECORD_DIR: 0, PICTURE_DIR: 0}
        root = status.mount_point
        record, picture = await asyncio.gather(
            asyncio.to_thread(_usage, root / RECORD_DIR),
            asyncio.to_thread(_usage, root / PICTURE_DIR),
        )
        return {RECORD_DIR: record, PICTURE_DIR: picture}

    async def format(self, card_id: int) -> None:
        """Start formatting the card and return; `card(id).format_percent` follows it."""
        card = self._find(card_id)
        if card is None:
            raise StorageError("notFound", f"there is no card {card_id}")
        if card.state is CardState.FORMATTING:
            raise StorageError("busy", f"card {card_id} is being formatted")
        async with card.lock:
            if card.state is CardState.FORMATTING:
                raise StorageError("busy", f"card {card_id} is being formatted")
            if card.state is CardState.ABSENT:
                raise StorageError("absent", f"there is no card in slot {card_id}")
            if card.device_read_only:
                raise StorageError("readOnly", f"card {card_id} is write-protected")
            card.format_percent = 0
            await self._set_state(card, CardState.FORMATTING, "")
        task = asyncio.create_task(self._format(card), name=f"storage-format-{card_id}")
        self._formats.add(task)
        task.add_done_callback(self._formats.discard)

    async def apply(self, old: StorageSettings, new: StorageSettings) -> None:
        """The storage settings changed: overwrite decides whether a full card is `diskfull`."""
        if old.overwrite != new.overwrite:
            for card in self._cards:
                self._update_disk_full(card)

    # -- internals -------------------------------------------------------------------------
    def _find(self, card_id: int) -> _Card | None:
        return next((c for c in self._cards if c.id == card_id), None)

    def _status(self, card: _Card) -> CardStatus:
        settings = self._settings()
        mounted = card.state in MOUNTED_STATES
        return CardStatus(
            id=card.id,
            name=card.name,
            kind=card.slot.kind,
            device=card.device,
            state=card.state,
            capacity=card.capacity,
            free=card.free if mounted else 0,
            mount_point=card.root,
            read_only=card.device_read_only,
            format_percent=card.format_percent,
            record_quota=card.capacity * settings.record_quota_percent // 100 if mounted else 0,
            picture_quota=card.capacity * settings.picture_quota_percent // 100 if mounted else 0,
            detail=card.detail,
        )

    async def _supervise(self) -> None:
        stopping = self._stopping
        await supervise(self._run, "storage monitor", log, keep_going=lambda: not stopping.is_set())

    async def _run(self) -> None:
        while not self._stopping.is_set():
            for card in self._cards:
                if card.lock.locked() or card.state is CardState.FORMATTING:
                    continue  # a format owns the card
                async with card.lock:
                    await self._look(card)
            self._first_look.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), POLL_S)

    async def _look(self, card: _Card) -> None:
        mounted = card.state in MOUNTED_STATES
        obs = await asyncio.to_thread(card.observe, probe_io=mounted)
        if obs.device is None:
            await self._gone(card)
            return
        card.device, card.device_read_only = obs.device, obs.device_read_only
        if card.state is CardState.ERROR and obs.pulled and not card.autoclear_at_bring_up:
            # Being pulled: the loop device goes at its last close. Mounted again now, it never
            # would (the recorders' files keep a lazily unmounted file system alive until then).
            return
        if card.state is CardState.ABSENT or (
            card.state is CardState.ERROR and time.monotonic() >= card.retry_at
        ):
            await self._bring_up(card, obs)
            return
        if card.state is CardState.UNINITIALIZED:
            card.capacity = obs.size
            return
        if not mounted:
            return
        if card.is_directory:
            self._take_space(card, obs.capacity, obs.free)
            await self._update_full(card)
            return
        problem = self._problem(card, obs)
        if problem:
            await self._fail(card, problem)
            return
        self._take_space(card, obs.capacity, obs.free)
        await self._update_full(card)

    @staticmethod
    def _problem(card: _Card, obs: _Observation) -> str:
        if obs.pulled and not card.autoclear_at_bring_up:
            return f"card removed ({obs.device} detached)"
        if obs.mount is None or obs.mount.major_minor != obs.rdev:
            return f"file system on {obs.device} no longer mounted at {card.mount_point}"
        if obs.read_error:
            return obs.read_error
        if obs.mount.read_only and card.state in WRITABLE_STATES:
            return "file system turned read-only after errors"
        return ""

    async def _gone(self, card: _Card) -> None:
        if card.state is CardState.ABSENT:
            return
        was_in_use = card.state in MOUNTED_STATES
        if card.mounted:
            await asyncio.to_thread(card.release, lazy=True)
        card.device, card.capacity, card.free, card.device_read_only = "", 0, 0, False
        await self._set_state(card, CardState.ABSENT, "card removed")
        if was_in_use:
            self._raise_disk_error(card, "card removed while in use")

    async def _bring_up(self, card: _Card, obs: _Observation) -> None:
        assert obs.device is not None
        state, detail = await asyncio.to_thread(card.bring_up, obs.device, obs.device_read_only)
        card.capacity, card.autoclear_at_bring_up = obs.size, obs.pulled
        if state in MOUNTED_STATES:
            capacity, free = await asyncio.to_thread(_space, card.root)
            self._take_space(card, capacity, free)
            if state is CardState.NORMAL and classify_space(card.capacity, card.free, False):
                state = CardState.FULL
        if state is CardState.ERROR:
            card.retry_at = time.monotonic() + RETRY_S
            card.detail = detail
            if card.state is not CardState.ERROR:
                await self._set_state(card, state, detail)
                self._raise_disk_error(card, detail)
            return
        await self._set_state(card, state, detail)
        if state in MOUNTED_STATES:
            self._clear_disk_error(card)
        self._update_disk_full(card)

    async def _fail(self, card: _Card, problem: str) -> None:
        """A card in use went bad: stop using it (lazily: files may still be open on it)."""
        await self._set_state(card, CardState.ERROR, problem)
        self._update_disk_full(card)
        await asyncio.to_thread(card.release, lazy=True)
        card.retry_at = time.monotonic() + RETRY_S
        self._raise_disk_error(card, problem)

    @staticmethod
    def _take_space(card: _Card, capacity: int, free: int) -> None:
        if capacity > 0:
            card.capacity, card.free = capacity, free

    def out_of_space(self, mount_point: Path) -> None:
        """A writer got ENOSPC on the card at `mount_point`. A fragment can be larger than the
        1 % that makes a card `full` (8 Mbit/s is 1 MB a second, 1 % of a 64 MB card is 640
        KB): the write fails, is undone, and the free space stays above the mark while nothing
        can be recorded. The card counts as full until free space has grown by the margin
        `full` clears with past what it was then (or past that margin, whichever is more)."""
        card = next((c for c in self._cards if c.mount_point == mount_point), None)
        if card is not None and card.state in WRITABLE_STATES:
            card.no_space_at = card.free

    async def _update_full(self, card: _Card) -> None:
        full = classify_space(card.capacity, card.free, card.state is CardState.FULL)
        if card.no_space_at is not None:
            margin = round((FULL_CLEARS_AT - FULL_BELOW) * card.capacity)
            room = max(card.no_space_at + margin, FULL_CLEARS_AT * card.capacity)
            full = full or card.free < room
            if not full:
                card.no_space_at = None
        if full and card.state is CardState.NORMAL:
            pct = 100 * card.free / card.capacity
            await self._set_state(card, CardState.FULL, f"{pct:.2f} % free")
        elif not full and card.state is CardState.FULL:
            await self._set_state(card, CardState.NORMAL, "")
        else:
            return
        self._update_disk_full(card)

    async def _format(self, card: _Card) -> None:
        async with card.lock:
            try:
                error = await self._format_card(card)
            except asyncio.CancelledError:
                card.format_percent = 0
                raise
            except _FormatRefused as refused:
                log.warning("card %d: not formatted: %s", card.id, refused)
                card.format_percent = 0
                obs = await asyncio.to_thread(card.observe, probe_io=False)
                await (self._gone(card) if obs.device is None else self._bring_up(card, obs))
                return
            except Exception as exc:
                log.exception("card %d: format crashed", card.id)
                error = f"format crashed: {exc}"
            if error:
                card.format_percent = 0
                card.retry_at = time.monotonic() + RETRY_S
                await self._set_state(card, CardState.ERROR, error)
                self._raise_disk_error(card, error)
                return
            obs = await asyncio.to_thread(card.observe, probe_io=False)
            if obs.device is None:
                card.format_percent = 0
                await self._gone(card)
                return
            # 100 before the bring-up leaves the formatting state: a status read in between
            # must not see "not formatting" at the 95 % mkfs ended on.
            card.format_percent = 100
            await self._bring_up(card, obs)
            if card.state not in WRITABLE_STATES:
                card.format_percent = 0

    async def _format_card(self, card: _Card) -> str:
        """Unmount, make the file system, report progress; '' or what went wrong."""
        if card.is_directory:
            await asyncio.to_thread(card.wipe_directory, self._progress_setter(card))
            return ""
        for attempt in range(UNMOUNT_ATTEMPTS):
            if await asyncio.to_thread(card.release, lazy=False):
                break
            if attempt == UNMOUNT_ATTEMPTS - 1:
                raise _FormatRefused(f"files on {card.mount_point} stay open")
            await asyncio.sleep(1.0)
        device = await asyncio.to_thread(card.slot.locate)
        if not device:
            return "the card went away before it could be formatted"
        card.device = device
        process = await asyncio.create_subprocess_exec(
            *MKFS_ARGS,
            device,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
        progress, tail = MkfsProgress(), ""
        try:
            assert process.stdout is not None
            while chunk := await process.stdout.read(4096):
                text = chunk.decode("utf-8", errors="replace")
                card.format_percent = progress.feed(text)
                tail = (tail + text)[-400:]
            returncode = await process.wait()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        if returncode != 0:
            last = [line for line in re.split(r"[\b\r\n]+", tail) if line.strip()]
            return f"mkfs.ext4 failed: {last[-1].strip() if last else returncode}"
        card.format_percent = MkfsProgress.DONE
        return ""

    @staticmethod
    def _progress_setter(card: _Card) -> Callable[[int], None]:
        def set_percent(percent: int) -> None:
            card.format_percent = percent  # an int store: safe from the worker thread

        return set_percent

    async def _set_state(self, card: _Card, state: CardState, detail: str) -> None:
        old, card.state = card.state, state
        card.detail = detail if state is CardState.ERROR else ""
        if state is old:
            return
        log.info(
            "card %d (%s): %s -> %s%s", card.id, card.where, old, state,
            f" ({detail})" if detail else "",
        )  # fmt: skip
        status = self._status(card)
        for listener in list(self._state_listeners):
            try:
                result = listener(status)
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, SUBSCRIBER_TIMEOUT_S)
            except Exception:
                log.exception("storage state listener %r failed", listener)

    def _raise_disk_error(self, card: _Card, details: str) -> None:
        if not card.disk_error:
            card.disk_error = True
            self._emit("diskerror", True, f"card {card.id}: {details}")

    def _clear_disk_error(self, card: _Card) -> None:
        if card.disk_error:
            card.disk_error = False
            self._emit("diskerror", False, f"card {card.id} is usable again")

    def _update_disk_full(self, card: _Card) -> None:
        should = card.state is CardState.FULL and not self._settings().overwrite
        if should != card.disk_full:
            card.disk_full = should
            pct = 100 * card.free / card.capacity if card.capacity else 0.0
            details = (
                f"card {card.id} is full ({pct:.2f} % free) and overwrite is off"
                if should
                else f"card {card.id} takes recordings again"
            )
            self._emit("diskfull", should, details)

    def _emit(self, kind: str, active: bool, details: str) -> None:
        for listener in list(self._event_listeners):
            try:
                listener(kind, active, details)
            except Exception:
                log.exception("storage event listener %r failed", listener)


def _is_block_device(path: Path) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False
