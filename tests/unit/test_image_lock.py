"""The lock files of board images: parsing, writing, apt pins and the installed-set check."""

from __future__ import annotations

import json

import pytest

from vigil_tools.image import lock, wheels
from vigil_tools.image.recipe import REPO, ImageError, WheelsRecipe

DIGEST = "ab" * 32


def test_packages_round_trip_sorted_with_header():
    pins = {"zstd": "1.5.4+dfsg2-5", "adduser": "3.134", "libc6": "2.36-9+deb12u10"}
    text = lock.format_packages(pins, "first line\n\nsecond")
    assert text.splitlines()[:3] == ["# first line", "#", "# second"]
    assert text.splitlines()[3:] == [
        "adduser=3.134",
        "libc6=2.36-9+deb12u10",
        "zstd=1.5.4+dfsg2-5",
    ]
    assert lock.parse_packages(text) == pins


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("adduser", "not package=version"),
        ("Adduser=3.134", "not package=version"),
        ("adduser=", "not package=version"),
        ("adduser=three", "not package=version"),
        ("adduser=3.134\nadduser=3.135", "pinned twice"),
    ],
)
def test_packages_refuses_bad_lines(line, reason):
    with pytest.raises(ImageError, match=reason):
        lock.parse_packages(f"# header\n{line}\n", "x.lock")


def test_epoch_versions_are_kept():
    assert lock.parse_packages("python3-pkg=1:2.0-1~deb12u1\n") == {
        "python3-pkg": "1:2.0-1~deb12u1"
    }


def test_apt_preferences_pin_every_package_above_downgrade_priority():
    text = lock.apt_preferences({"b": "2.0-1", "a": "1:1.0"})
    assert text.split("\n\n")[0] == "Package: a\nPin: version 1:1.0\nPin-Priority: 1001"
    assert "Package: b\nPin: version 2.0-1\nPin-Priority: 1001" in text
    assert lock.LOCK_PRIORITY > 1000  # apt installs a pin above 1000 even as a downgrade


def test_installed_packages_keeps_only_installed_ones():
    text = "ii  adduser=3.134\nrc  old-kernel=1.0\nii  zstd=1.5.4\n\n"
    assert lock.installed_packages(text) == {"adduser": "3.134", "zstd": "1.5.4"}


def test_compare_names_every_difference():
    pins = {"a": "1", "b": "2", "c": "3"}
    assert lock.compare(pins, dict(pins)) == []
    problems = lock.compare(pins, {"a": "1", "b": "2.1", "d": "4"})
    assert problems == [
        "c: locked, not installed",
        "d: installed, not locked",
        "b: 2.1 installed, 2 locked",
    ]


def test_wheels_round_trip():
    pins = [lock.WheelPin("numpy", "2.1.3", DIGEST), lock.WheelPin("aiohttp", "3.12.1", "cd" * 32)]
    text = lock.format_wheels(pins, "header")
    assert text.splitlines()[1] == f"aiohttp==3.12.1 --hash=sha256:{'cd' * 32}"
    assert lock.parse_wheels(text) == sorted(pins, key=lambda p: p.name)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("numpy==2.1.3", "not name==version"),
        ("numpy>=2 --hash=sha256:" + DIGEST, "not name==version"),
        ("NumPy==2.1.3 --hash=sha256:" + DIGEST, "not a normalized pin"),
        ("numpy==2.1.3 --hash=sha256:xyz", "not a sha256"),
        (f"numpy==1 --hash=sha256:{DIGEST}\nnumpy==2 --hash=sha256:{DIGEST}", "pinned twice"),
    ],
)
def test_wheels_refuses_bad_lines(line, reason):
    with pytest.raises(ImageError, match=reason):
        lock.parse_wheels(line)


def test_missing_lock_says_how_to_make_it(tmp_path):
    with pytest.raises(ImageError, match="vigil image lock"):
        lock.read_lock(tmp_path / "packages.lock")


def test_pins_from_pip_report_leave_vigil_out():
    report = {
        "version": "1",
        "install": [
            {
                "metadata": {"name": "Vigil", "version": "0.1.0"},
                "download_info": {"url": "file:///x.whl", "archive_info": {}},
            },
            {
                "metadata": {"name": "PySerial_Asyncio.Fast", "version": "0.16"},
                "download_info": {"archive_info": {"hashes": {"sha256": DIGEST}}},
            },
            {
                "metadata": {"name": "numpy", "version": "2.1.3"},
                "download_info": {"archive_info": {"hash": f"sha256={'cd' * 32}"}},
            },
        ],
    }
    pins = wheels.pins_from_report(json.loads(json.dumps(report)))
    assert pins == [
        lock.WheelPin("numpy", "2.1.3", "cd" * 32),
        lock.WheelPin("pyserial-asyncio-fast", "0.16", DIGEST),
    ]


def test_target_platforms_include_older_manylinux():
    recipe = WheelsRecipe(platforms=("manylinux_2_36_x86_64",), python="311")
    options = wheels.target_options(recipe)
    platforms = [options[i + 1] for i, o in enumerate(options) if o == "--platform"]
    assert platforms[0] == "manylinux_2_36_x86_64"
    assert {"manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"} <= set(
        platforms
    )
    assert "manylinux_2_37_x86_64" not in platforms
    assert options[options.index("--python-version") + 1] == "311"
    assert "--only-binary=:all:" in options


def test_find_locked_matches_by_hash(tmp_path):
    good = tmp_path / "smbus2-0.5.0-py2.py3-none-any.whl"
    good.write_bytes(b"wheel one")
    other = tmp_path / "smbus2-0.4.0-py2.py3-none-any.whl"
    other.write_bytes(b"wheel zero")
    pin = lock.WheelPin("smbus2", "0.5.0", wheels.sha256_of(good))
    assert wheels.find_locked([pin], tmp_path) == {pin: good}
    good.write_bytes(b"tampered")
    with pytest.raises(ImageError, match=r"smbus2==0\.5\.0 with the locked hash"):
        wheels.find_locked([pin], tmp_path)


def test_committed_locks_parse():
    directory = REPO / "board" / "qemu-x86_64"
    pins = lock.parse_packages((directory / "packages.lock").read_text())
    assert {"systemd", "rauc", "python3", "e2fsprogs"} <= set(pins)
    names = {pin.name for pin in lock.parse_wheels((directory / "wheels.lock").read_text())}
    assert {"aiohttp", "av", "numpy", "gpiozero", "lgpio"} <= names
    assert "vigil" not in names
