"""Start-up reconciliation of recording files with their index, and the deletion protocol.

Run before any recorder starts (it blocks: call it through `asyncio.to_thread`). Afterwards:

- every garbage row's file is gone and the row too (a deletion that was interrupted is
  finished, never undone: the file is not re-indexed);
- every recording file is whole fragments: a torn tail (a `moof` without its complete `mdat`,
  a short box, a last fragment whose samples are not whole NAL units) is truncated away and the
  file fsynced, so it plays; a file without a single complete fragment is deleted;
- every file has a row and every row a file: rows of missing files are dropped, files without
  rows are indexed from their own boxes (the info box says stream, codec, start, record type);
- every row says what its file holds: end and size from the fragments, state `complete`.

Rows in state `complete` whose file has the size they state are trusted without a parse
(a `stat` per file, as Moonfire NVR does at start-up); the others, and files without rows,
are parsed, which reads only box headers and the `moof`s plus the last fragment's samples.

Deletion (overwrite, expiry) goes through garbage rows, as in Moonfire NVR: the segment row
becomes a garbage row in one commit, then the file is unlinked, the directory fsynced, and
the garbage row removed.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from vigil.config.atomic import fsync_dir
from vigil.record.fmp4 import FormatError, SegmentLayout, read_layout
from vigil.record.index import RecordingIndex, Segment
from vigil.record.recorder import VIDEO_DIR

log = logging.getLogger(__name__)

# Names the recorder gives its files: `<stream>-<YYYYmmddTHHMMSS>.<micros>Z[~n].mp4`.
OUR_NAME = re.compile(r"^\d+-\d{8}T\d{6}\.\d{6}Z(~\d+)?\.mp4$")


@dataclass
class ReconcileReport:
    garbage_deleted: int = 0  # interrupted deletions finished
    garbage_forgotten: int = 0  # garbage rows whose files were already gone
    truncated: int = 0  # files whose torn last fragment was cut off
    empty_deleted: int = 0  # files without one complete fragment
    rows_dropped: int = 0  # rows whose files are gone
    rows_added: int = 0  # files indexed from their boxes
    rows_completed: int = 0  # rows left `writing` by a crash, completed
    rows_corrected: int = 0  # other rows whose end or size disagreed with the file
    foreign: int = 0  # files under the video directory that are not recordings (left alone)
    unreadable: int = 0  # files that could not be read (an I/O error): left as they are

    @property
    def changes(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self)) - self.foreign - self.unreadable


_MESSAGES = {
    "garbage_deleted": "interrupted deletions finished",
    "garbage_forgotten": "garbage rows of files already gone removed",
    "truncated": "torn fragments truncated",
    "empty_deleted": "files without a complete fragment deleted",
    "rows_dropped": "rows of missing files dropped",
    "rows_added": "files without rows indexed",
    "rows_completed": "segments left open by a crash completed",
    "rows_corrected": "rows corrected from their files",
    "foreign": "files that are not recordings left alone",
    "unreadable": "files that could not be read left alone",
}


def _unlink_all(root: Path, paths: Iterable[str]) -> tuple[int, int]:
    """Unlink the files, fsync their directories; (deleted, already gone)."""
    deleted = gone = 0
    directories: set[Path] = set()
    for relative in paths:
        path = root / relative
        try:
            path.unlink()
            deleted += 1
            directories.add(path.parent)
        except FileNotFoundError:
            gone += 1
    for directory in directories:
        fsync_dir(directory)
    return deleted, gone


def collect_garbage(root: Path, index: RecordingIndex) -> tuple[int, int]:
    """Finish the deletions the garbage rows record; (files deleted, rows of files gone)."""
    paths = index.garbage()
    if not paths:
        return 0, 0
    counts = _unlink_all(root, paths)
    index.forget_garbage(paths)
    return counts


def delete_segments(root: Path, index: RecordingIndex, segment_ids: Iterable[int]) -> list[str]:
    """Delete unlocked, complete segments crash-safely; the paths that were deleted."""
    paths = index.mark_garbage(segment_ids)
    if paths:
        _unlink_all(root, paths)
        index.forget_garbage(paths)
    return paths


def _files(root: Path) -> tuple[dict[str, Path], int]:
    """Recording files under the video directory by relative path, and the foreign count."""
    found: dict[str, Path] = {}
    foreign = 0
    video = root / VIDEO_DIR
    if not video.is_dir():
        return found, 0
    for directory, _, names in os.walk(video):
        for name in names:
            path = Path(directory) / name
            if OUR_NAME.match(name):
                found[path.relative_to(root).as_posix()] = path
            else:
                foreign += 1
    return found, foreign


def _parse(path: Path) -> SegmentLayout | None:
    """The file's layout; None if it is not a recording at all. OSError if it cannot be read."""
    with path.open("rb") as f:
        try:
            return read_layout(f)
        except FormatError:
            return None


def _truncate(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)  # the file is whole again before the row says so
    finally:
        os.close(fd)


def reconcile(root: Path, index: RecordingIndex) -> ReconcileReport:
    """Make files and rows agree (see the module docstring); logs one line per kind of fix."""
    report = ReconcileReport()
    report.garbage_deleted, report.garbage_forgotten = collect_garbage(root, index)
    files, report.foreign = _files(root)
    rows: dict[str, Segment] = {segment.path: segment for segment in index.all_segments()}

    missing = [segment.id for path, segment in rows.items() if path not in files]
    report.rows_dropped = index.drop_segments(missing) if missing else 0

    doomed_rows: list[int] = []
    doomed_files: list[str] = []
    for relative, path in sorted(files.items()):
        row = rows.get(relative)
        if row is not None and row.state == "complete":
            try:
                if path.stat().st_size == row.bytes:
                    continue
            except FileNotFoundError:
                continue
        try:
            layout = _parse(path)
        except OSError as exc:  # a failing card: deleting what cannot be read would be worse
            log.warning("%s cannot be read: %s", path, exc)
            report.unreadable += 1
            continue
        if layout is None or layout.info is None or not layout.fragments:
            if row is not None:
                doomed_rows.append(row.id)
            else:
                doomed_files.append(relative)
            continue
        if layout.torn:
            log.debug("%s: %s at %d of %d", relative, layout.problem, layout.valid_end, layout.size)
            _truncate(path, layout.valid_end)
            report.truncated += 1
        info = layout.info
        end_pts = info.start_pts + layout.duration
        if row is None:
            index.add_segment(info, relative, end_pts, layout.valid_end, "complete")
            report.rows_added += 1
        elif (row.end_pts, row.bytes, row.state) != (end_pts, layout.valid_end, "complete"):
            index.update_segment(row.id, end_pts, layout.valid_end, "complete")
            if row.state != "complete":
                report.rows_completed += 1
            else:
                report.rows_corrected += 1

    if doomed_rows or doomed_files:
        # Through garbage rows, like any deletion: a crash now must not resurrect them.
        doomed = index.mark_garbage(doomed_rows, force=True)
        index.add_garbage(doomed_files)
        deleted, _ = _unlink_all(root, doomed + doomed_files)
        index.forget_garbage(doomed + doomed_files)
        report.empty_deleted = deleted

    for name, message in _MESSAGES.items():
        count = getattr(report, name)
        if count:
            log.info("recordings in %s: %d %s", root, count, message)
    return report
