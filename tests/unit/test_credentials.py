"""The credentials store: 0600 file in a 0700 folder, atomic replacement, unset reads as ""."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from vigil.security.credentials import Credentials, http_host_name


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def loaded(path: Path) -> Credentials:
    credentials = Credentials(path)
    credentials.load()
    return credentials


def test_set_get_persist_and_modes(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "credentials.json"
    old_umask = os.umask(0o022)  # a loose umask must not loosen the secret
    try:
        credentials = loaded(path)
        assert credentials.get("mail") == ""
        assert not path.exists()
        credentials.set("mail", "smtp pässword")
        credentials.set(http_host_name(3), "alarm:server")
    finally:
        os.umask(old_umask)
    assert (mode(path), mode(path.parent)) == (0o600, 0o700)
    assert json.loads(path.read_text()) == {"mail": "smtp pässword", "http_host.3": "alarm:server"}
    again = loaded(path)
    assert (again.get("mail"), again.get("http_host.3"), again.get("ftp")) == (
        "smtp pässword",
        "alarm:server",
        "",
    )
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temp files


def test_empty_value_forgets_and_remove_and_wipe(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    credentials = loaded(path)
    for name in ("mail", "ftp", "http_host.1", "http_host.2"):
        credentials.set(name, f"{name}-secret")
    credentials.set("mail", "")
    credentials.remove("http_host.1", "http_host.4")
    assert json.loads(path.read_text()) == {
        "ftp": "ftp-secret",
        "http_host.2": "http_host.2-secret",
    }
    credentials.wipe()
    assert json.loads(path.read_text()) == {}
    assert loaded(path).get("ftp") == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Mail", "x"),
        ("http_host.0", "x"),
        ("../ftp", "x"),
        ("", "x"),
        ("mail", "two\nlines"),
        ("mail", "nul\x00"),
        ("mail", "x" * 129),
    ],
)
def test_bad_names_and_values_change_nothing(tmp_path: Path, name: str, value: str) -> None:
    path = tmp_path / "credentials.json"
    credentials = loaded(path)
    credentials.set("ftp", "kept")
    before = path.read_bytes()
    with pytest.raises(ValueError):
        credentials.set(name, value)
    assert path.read_bytes() == before
    assert credentials.get("ftp") == "kept"


@pytest.mark.parametrize("content", [b"{not json", b'["a list"]', b'{"mail": 5}'])
def test_damaged_file_reads_as_empty_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path = tmp_path / "credentials.json"
    path.write_bytes(content)
    with caplog.at_level(logging.ERROR, logger="vigil.security.credentials"):
        credentials = loaded(path)
    assert credentials.get("mail") == ""
    assert "must be set again" in caplog.text
    credentials.set("mail", "new")  # and it can be written afresh
    assert loaded(path).get("mail") == "new"
