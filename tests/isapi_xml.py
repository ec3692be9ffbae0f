"""Reading ISAPI answers in device tests: the document of a 200, a path's text, a refusal."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import requests

NS = "{http://www.hikvision.com/ver20/XMLSchema}"


def xml(reply: requests.Response) -> ET.Element:
    assert reply.status_code == 200, reply.text
    return ET.fromstring(reply.content)


def text(element: ET.Element, path: str) -> str:
    return element.findtext("/".join(f"{NS}{part}" for part in path.split("/"))) or ""


def refusal(reply: requests.Response) -> tuple[int, str, str]:
    status = ET.fromstring(reply.content)
    return reply.status_code, text(status, "subStatusCode"), text(status, "errorMsg")
