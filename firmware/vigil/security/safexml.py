"""Untrusted XML (ISAPI bodies, SADP datagrams) parsed with defusedxml: no DTD at all, so no
entity expansion ("billion laughs"), no external entities, no network access from a parser."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException


class RejectedXml(ValueError):
    """The document is malformed or uses a construct that is refused; the message says which."""


def parse_untrusted(data: str | bytes) -> ET.Element:
    try:
        return DefusedET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise RejectedXml(f"forbidden XML construct: {type(exc).__name__}") from None
    except ET.ParseError as exc:
        raise RejectedXml(f"not well-formed XML: {exc}") from None
