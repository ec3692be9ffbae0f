"""Firmware upgrade over ISAPI on a real vigild (sim board, its slots under the data directory).

The board is a copy of the sim board whose keyring is this module's own development CA; the
bundles are real (mksquashfs, `rauc bundle`) and the device checks them with the real
`rauc info` / `rauc extract`. A good bundle installs to slot B, the device re-executes itself
(the sim's reboot) into it and reports its version; bad bundles change nothing; a bundle whose
root has no vigild makes the next start fail (the process exits, as vigild would under
systemd), and the start after that is back on slot A (the GRUB scheme's fallback).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPDigestAuth

from tests.bundles import bundle, flip_byte, truncate
from tests.isapi_xml import NS, refusal, text, xml
from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.board.description import resolve_board_path
from vigil.system.upgrade import BUNDLE_LIMIT
from vigil.system.upgrade_sim import VIGILD
from vigil_tools.image.keys import SigningKeys, ensure_keys

UPGRADE = "/ISAPI/System/updateFirmware"
STATUS = "/ISAPI/System/upgradeStatus"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("upgrade")


@pytest.fixture(scope="module")
def keys(work: Path) -> SigningKeys:
    return ensure_keys(work / "keys")


@pytest.fixture(scope="module")
def board(work: Path, keys: SigningKeys) -> Path:
    """The sim board, trusting this module's CA."""
    sim = resolve_board_path("sim").read_text(encoding="utf-8")
    path = work / "board.toml"
    section = f'\n[update]\ndriver = "sim"\nkeyring = "{keys.ca_cert}"\n'
    path.write_text(sim.split("\n[update]")[0] + section, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def good(work: Path, keys: SigningKeys) -> Path:
    return bundle(work, keys, "2.0.0")


def start(directory: Path, board: Path) -> Vigild:
    daemon = Vigild(data_dir=directory, extra_args=("--board", str(board))).start()
    daemon.activate()
    return daemon


@pytest.fixture
def device(tmp_path: Path, board: Path) -> Iterator[Vigild]:
    daemon = start(tmp_path / "device", board)
    try:
        yield daemon
    finally:
        daemon.stop()


def upload(device: Vigild, path: Path) -> requests.Response:
    return device.session().put(f"{device.url}{UPGRADE}", data=path.read_bytes(), timeout=60)


def firmware(device: Vigild) -> str:
    return text(xml(device.get("/ISAPI/System/deviceInfo")), "firmwareVersion")


def status(device: Vigild) -> tuple[str, int]:
    doc = xml(device.get(STATUS))
    assert doc.tag == f"{NS}upgradeStatus"
    return text(doc, "upgrading"), int(text(doc, "percent"))


def update_state(device: Vigild) -> dict[str, str]:
    """Every file of the simulated slots and boot environment, by content hash."""
    folder = device.data_dir / "update"
    files = sorted(folder.rglob("*")) if folder.exists() else []
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def boot_env(device: Vigild) -> dict[str, object]:
    """The simulated bootloader's environment (ORDER, A_OK, A_TRY, B_OK, B_TRY)."""
    return json.loads((device.data_dir / "update" / "grubenv.json").read_text())


def log_records(device: Vigild, minor: str) -> list[tuple[str, str]]:
    with sqlite3.connect(device.data_dir / "log.db") as db:
        rows = db.execute("SELECT major, details FROM log WHERE minor = ?", (minor,)).fetchall()
    return [(str(major), str(details)) for major, details in rows]


def wait_until(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_good_bundle_installs_reboots_into_slot_b(device: Vigild, good: Path) -> None:
    before = firmware(device)
    assert status(device) == ("false", 0)
    seen: list[tuple[str, int]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            with contextlib.suppress(requests.RequestException, AssertionError):
                seen.append(status(device))
            time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        reply = upload(device, good)
    finally:
        done.set()
        poller.join()
    assert reply.status_code == 200, reply.text
    seen.append(status(device))  # installed, until the reboot (REBOOT_DELAY_S) takes it down
    assert ("true", 100) in seen, seen
    assert all(upgrading == "true" for upgrading, percent in seen if percent > 0), seen
    wait_until(lambda: firmware(device) == "V2.0.0", "the device to run V2.0.0 after its reboot")
    assert before != "V2.0.0"
    assert device.proc is not None and device.proc.poll() is None  # re-executed, same process
    assert status(device) == ("false", 0)
    env = boot_env(device)
    assert (env["ORDER"], env["B_OK"], env["B_TRY"]) == ("B A", 1, 0)
    assert (device.data_dir / "update" / "slot-B.img").read_bytes()[:4] == b"hsqs"
    assert not (device.data_dir / "update" / "upload.raucb").exists()
    assert [major for major, _ in log_records(device, "remoteUpgrade")] == ["Operation"]
    assert log_records(device, "upgradeSucceeded") == [("Information", "slot B runs V2.0.0")]


@pytest.fixture(scope="module")
def bad_bundles(work: Path, keys: SigningKeys, good: Path) -> list[tuple[str, Path, str, str]]:
    """(what, bundle, subStatusCode, words of the message)."""
    size = good.stat().st_size
    stranger = ensure_keys(work / "stranger-keys")
    return [
        ("tampered", flip_byte(good, work / "tampered.raucb", size // 2), "badFirmware", "corrupt"),
        (
            "truncated",
            truncate(good, work / "truncated.raucb", size - 700),
            "badFirmware",
            "refused",
        ),
        ("foreign", bundle(work, keys, "2.0.1", board="other"), "badDevType", "vigil-other"),
        ("unsigned by our CA", bundle(work, stranger, "2.0.2"), "badFirmware", "signature"),
    ]


def test_bad_bundles_are_refused_and_change_nothing(
    device: Vigild, bad_bundles: list[tuple[str, Path, str, str]]
) -> None:
    version, state, config = firmware(device), update_state(device), device.data_dir / "config.toml"
    config_before = config.read_bytes()
    for what, path, sub, words in bad_bundles:
        reply = upload(device, path)
        code, sub_status, message = refusal(reply)
        assert (code, sub_status) == (400, sub), (what, reply.text)
        assert words in message, (what, message)
        assert update_state(device) == state, what
        assert status(device) == ("false", 0), what
    assert firmware(device) == version and config.read_bytes() == config_before
    failures = log_records(device, "upgradeFailed")
    assert [major for major, _ in failures] == ["Exception"] * len(bad_bundles)
    assert log_records(device, "remoteUpgrade") == []
    assert device.proc is not None and device.proc.poll() is None


def test_a_second_upload_is_refused_while_one_is_under_way(
    device: Vigild, bad_bundles: list[tuple[str, Path, str, str]]
) -> None:
    tampered = bad_bundles[0][1].read_bytes()
    half = len(tampered) // 2
    second_done = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield tampered[:half]
        second_done.wait(30)
        yield tampered[half:]

    replies: list[requests.Response] = []

    def first_upload() -> None:
        # The digest nonce first (requests keeps it per thread), so the streamed body is sent
        # once, with its Authorization, instead of being needed again after a 401.
        auth = HTTPDigestAuth("admin", ADMIN_PASSWORD)
        requests.get(f"{device.url}/ISAPI/System/deviceInfo", auth=auth, timeout=10)
        replies.append(
            requests.put(f"{device.url}{UPGRADE}", data=slow_body(), auth=auth, timeout=60)
        )

    first = threading.Thread(target=first_upload)
    first.start()
    try:
        wait_until(lambda: status(device)[0] == "true", "the first upload to begin")
        second = upload(device, bad_bundles[1][1])
        code, sub_status, message = refusal(second)
        assert (code, sub_status) == (503, "deviceBusy") and "already" in message
    finally:
        second_done.set()
        first.join(60)
    assert refusal(replies[0])[:2] == (400, "badFirmware")  # the first went on and was judged
    assert status(device) == ("false", 0)


def test_an_operator_without_upgrade_may_not(device: Vigild, good: Path) -> None:
    user = (
        "<User><userName>watcher</userName><password>Oper-Pass-77</password>"
        f"<userLevel>Operator</userLevel><loginPassword>{ADMIN_PASSWORD}</loginPassword></User>"
    )
    assert device.post("/ISAPI/Security/users", user).status_code == 200
    state = update_state(device)
    reply = device.session("watcher", "Oper-Pass-77").put(
        f"{device.url}{UPGRADE}", data=good.read_bytes(), timeout=30
    )
    assert refusal(reply)[:2] == (403, "noPermission")
    assert update_state(device) == state and status(device) == ("false", 0)


def test_slot_that_never_starts_is_rolled_back(
    tmp_path: Path, board: Path, work: Path, keys: SigningKeys
) -> None:
    broken = bundle(work, keys, "3.0.0", startable=False)
    device = start(tmp_path / "device", board)
    try:
        before = firmware(device)
        assert upload(device, broken).status_code == 200
        assert device.proc is not None
        assert device.proc.wait(30) != 0  # the re-executed vigild, on slot B, cannot start
        assert f"slot B (V3.0.0): its root has no /{VIGILD}" in device.output()
        env = boot_env(device)
        assert env["ORDER"] == "B A" and env["B_TRY"] == 1  # tried, never marked good
        device.start()  # systemd's restart / the reboot: the bootloader takes slot A
        assert firmware(device) == before
        env = boot_env(device)
        assert (env["ORDER"], env["A_OK"], env["A_TRY"], env["B_OK"]) == ("A B", 1, 0, 0)
        # The record follows the slot's mark (the device log writes on its own time).
        wait_until(lambda: log_records(device, "upgradeRollback"), "the rollback record", 10)
        assert log_records(device, "upgradeRollback") == [
            ("Exception", f"slot B (V3.0.0) did not start; back on slot A ({before})")
        ]
    finally:
        device.stop()


def test_a_bundle_over_the_size_limit_is_refused_before_its_body(device: Vigild) -> None:
    auth = HTTPDigestAuth("admin", ADMIN_PASSWORD)
    requests.get(f"{device.url}/ISAPI/System/deviceInfo", auth=auth, timeout=10)  # a nonce
    state = update_state(device)
    conn = http.client.HTTPConnection("127.0.0.1", device.http_port, timeout=10)
    try:
        conn.putrequest("PUT", UPGRADE)
        conn.putheader("Authorization", auth.build_digest_header("PUT", f"{device.url}{UPGRADE}"))
        conn.putheader("Content-Length", str(BUNDLE_LIMIT + 1))
        conn.endheaders()  # no body follows: the answer must not wait for it
        reply = conn.getresponse()
        body = reply.read()
    finally:
        conn.close()
    assert reply.status == 413, body
    assert b"<subStatusCode>messageTooLarge</subStatusCode>" in body and b"512 MiB" in body
    assert update_state(device) == state and status(device) == ("false", 0)


def test_an_upload_cut_short_frees_the_device(device: Vigild, good: Path) -> None:
    auth = HTTPDigestAuth("admin", ADMIN_PASSWORD)
    requests.get(f"{device.url}/ISAPI/System/deviceInfo", auth=auth, timeout=10)  # a nonce
    state = update_state(device)
    data = good.read_bytes()
    conn = http.client.HTTPConnection("127.0.0.1", device.http_port, timeout=10)
    conn.putrequest("PUT", UPGRADE)
    conn.putheader("Authorization", auth.build_digest_header("PUT", f"{device.url}{UPGRADE}"))
    conn.putheader("Content-Length", str(len(data)))
    conn.endheaders()
    conn.send(data[: len(data) // 2])
    wait_until(lambda: status(device)[0] == "true", "the upload to begin")
    conn.close()  # the network drops: half a bundle, never judged
    wait_until(lambda: status(device) == ("false", 0), "the device to be free again")
    assert update_state(device) == state
    assert not (device.data_dir / "update" / "upload.raucb").exists()
    assert upload(device, good).status_code == 200  # the next upload is taken
    wait_until(lambda: firmware(device) == "V2.0.0", "the device to run V2.0.0")


@pytest.fixture
def small_update_folder(device: Vigild, tmp_path: Path) -> Iterator[Path]:
    """The device's update folder on a tmpfs with 256 KiB free: a full data partition."""
    folder = device.data_dir / "update"
    folder.mkdir(exist_ok=True)
    saved = tmp_path / "saved-update"
    shutil.copytree(folder, saved)
    used = sum(p.stat().st_size for p in saved.rglob("*") if p.is_file())
    size = (used // 4096 + 64 + 32) * 4096  # the files, their blocks' slack, and 256 KiB
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        shutil.copytree(saved, folder, dirs_exist_ok=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_data_partition_too_full_for_the_bundle_is_a_clear_refusal(
    device: Vigild, good: Path, small_update_folder: Path
) -> None:
    state = update_state(device)
    reply = upload(device, good)
    code, sub, message = refusal(reply)
    assert (code, sub) == (507, "deviceError"), reply.text
    assert "cannot be kept on the data partition: No space left on device" in message
    assert update_state(device) == state and status(device) == ("false", 0)
    assert not (small_update_folder / "upload.raucb").exists()
