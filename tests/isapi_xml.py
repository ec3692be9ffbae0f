"""Reading ISAPI answers in device tests: the document of a 200, a path's text, a refusal,
and a refused document that must change nothing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence

import pytest
import requests

from tests.vigild import Vigild

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
Refusal = tuple[str, str, str, str, str]  # what, path, body, sub status, words in the message


def xml(reply: requests.Response) -> ET.Element:
    assert reply.status_code == 200, reply.text
    return ET.fromstring(reply.content)


def text(element: ET.Element, path: str) -> str:
    return element.findtext("/".join(f"{NS}{part}" for part in path.split("/"))) or ""


def put_ok(device: Vigild, path: str, body: str = "") -> None:
    """PUT `body` and require a 200 `ResponseStatus` that says OK."""
    reply = device.put(path, body)
    assert reply.status_code == 200, reply.text
    assert text(ET.fromstring(reply.content), "statusCode") == "1", reply.text


def corners(left: int, bottom: int, right: int, top: int) -> str:
    """A RegionCoordinatesList in Hikvision's 704x576 screen (origin bottom left)."""
    points = [(left, top), (right, top), (right, bottom), (left, bottom)]
    inner = "".join(
        f"<RegionCoordinates><positionX>{x}</positionX><positionY>{y}</positionY>"
        "</RegionCoordinates>"
        for x, y in points
    )
    return f"<RegionCoordinatesList>{inner}</RegionCoordinatesList>"


def refusal(reply: requests.Response) -> tuple[int, str, str]:
    status = ET.fromstring(reply.content)
    return reply.status_code, text(status, "subStatusCode"), text(status, "errorMsg")


def bad(what: str, path: str, body: str, sub: str, words: str) -> Refusal:
    """A refused document: (what, path, body, sub status, words the message must contain)."""
    return (what, path, body, sub, words)


def assert_refused_unchanged(
    device: Vigild, documents: Sequence[str], path: str, body: str, sub: str, words: str
) -> None:
    """PUT `body` is a 400 `sub` naming `words`, and no document nor config.toml changed."""
    config = device.data_dir / "config.toml"
    before = [device.get(p).content for p in documents], config.read_bytes()
    code, sub_status, message = refusal(device.put(path, body))
    assert (code, sub_status) == (400, sub), message
    assert words in message, message
    assert ([device.get(p).content for p in documents], config.read_bytes()) == before


def refused_documents_test(bad: list[Refusal], documents: Sequence[str]) -> Callable[..., None]:
    """A module's test that each of `bad` is refused and changes none of `documents`
    (the module's `camera` fixture is the device)."""

    @pytest.mark.parametrize(("what", "path", "body", "sub", "words"), bad, ids=[b[0] for b in bad])
    def test_refused_documents_change_nothing(
        camera: Vigild, what: str, path: str, body: str, sub: str, words: str
    ) -> None:
        assert_refused_unchanged(camera, documents, path, body, sub, words)

    return test_refused_documents_change_nothing
