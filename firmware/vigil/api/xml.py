"""ISAPI XML in and out.

Out: documents in the hikvision.com namespace, `version="2.0"`, built from plain dicts.
In: defusedxml (no DTDs, no entities), any of the three ISAPI namespaces or none, read through
`XmlIn`, which remembers what the handler consumed so that any element it did not expect is
reported as an error instead of being silently dropped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from typing import Any

from vigil.api.errors import STATUS_STRINGS, IsapiError, bad_xml_content, bad_xml_format
from vigil.security.safexml import RejectedXml, parse_untrusted

NAMESPACE = "http://www.hikvision.com/ver20/XMLSchema"
ACCEPTED_NAMESPACES = frozenset(
    {
        NAMESPACE,
        "http://www.isapi.org/ver20/XMLSchema",
        "http://www.std-cgi.com/ver20/XMLSchema",
        "",
    }
)
MAX_DEPTH = 16
MAX_ELEMENTS = 4096
XML_CONTENT_TYPE = "application/xml; charset=UTF-8"

# ---------------------------------------------------------------------------------------------
# Output


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(parent: ET.Element, content: Mapping[str, Any]) -> None:
    for tag, value in content.items():
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            child = ET.SubElement(parent, tag)
            if isinstance(item, Mapping):
                attrs = {k[1:]: _text(v) for k, v in item.items() if k.startswith("@")}
                child.attrib.update(attrs)
                if "#text" in item:
                    child.text = _text(item["#text"])
                _fill(child, {k: v for k, v in item.items() if k[0] not in "@#"})
            else:
                child.text = _text(item)


def render(root: str, content: Mapping[str, Any]) -> bytes:
    """`render("DeviceInfo", {"deviceName": "x"})` -> the XML document as bytes.

    Values: scalars become text, mappings nest, lists repeat the tag, keys starting with `@`
    are attributes, `#text` is the text beside them, None is left out.
    """
    element = ET.Element(root, {"version": "2.0", "xmlns": NAMESPACE})
    _fill(element, content)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Input


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def parse(body: bytes, root: str | tuple[str, ...]) -> XmlIn:
    """Parse a request body whose root element must be `root` (one of several)."""
    try:
        element = parse_untrusted(body)
    except RejectedXml as exc:
        raise bad_xml_format(str(exc)) from None
    count = 0
    for node in element.iter():
        count += 1
        ns, _ = _local(node.tag)
        if ns not in ACCEPTED_NAMESPACES:
            raise bad_xml_content(f"unknown namespace {ns}")
    if count > MAX_ELEMENTS:
        raise bad_xml_content("too many elements")
    _, name = _local(element.tag)
    roots = (root,) if isinstance(root, str) else root
    if name not in roots:
        raise bad_xml_content(f"expected <{roots[0]}>, got <{name}>")
    doc = XmlIn(element, name)
    doc.check_depth(MAX_DEPTH)
    return doc


class XmlIn:
    """A request element whose children are read by local name and checked off as read."""

    def __init__(self, element: ET.Element, path: str) -> None:
        self.element = element
        self.path = path
        self.name = _local(element.tag)[1]
        self._children: list[tuple[str, ET.Element]] = [(_local(c.tag)[1], c) for c in element]
        self._consumed: set[int] = set()

    def check_depth(self, limit: int) -> None:
        if limit <= 0:
            raise bad_xml_content("XML nested too deeply")
        for _, child in self._children:
            XmlIn(child, "").check_depth(limit - 1)

    def _find(self, tag: str) -> list[tuple[int, ET.Element]]:
        return [(i, el) for i, (name, el) in enumerate(self._children) if name == tag]

    def has(self, tag: str) -> bool:
        return bool(self._find(tag))

    def _one(self, tag: str) -> ET.Element | None:
        found = self._find(tag)
        if len(found) > 1:
            raise bad_xml_content(f"<{tag}> appears more than once in {self.path}")
        if not found:
            return None
        self._consumed.add(found[0][0])
        return found[0][1]

    def text(self, tag: str, default: str | None = None, *, max_len: int = 256) -> str | None:
        element = self._one(tag)
        if element is None:
            return default
        if len(element):
            raise bad_xml_content(f"<{tag}> must hold text, not elements")
        value = (element.text or "").strip()
        if len(value) > max_len:
            raise bad_xml_content(f"<{tag}> is longer than {max_len} characters")
        return value

    def int(self, tag: str, default: int | None = None) -> int | None:
        value = self.text(tag)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise bad_xml_content(f"<{tag}> must be an integer") from None

    def bool(self, tag: str, default: bool | None = None) -> bool | None:
        value = self.text(tag)
        if value is None:
            return default
        if value not in ("true", "false"):
            raise bad_xml_content(f"<{tag}> must be true or false")
        return value == "true"

    def child(self, tag: str) -> XmlIn | None:
        element = self._one(tag)
        return None if element is None else XmlIn(element, f"{self.path}/{tag}")

    def children(self, tag: str, limit: int = 256) -> Iterator[XmlIn]:
        found = self._find(tag)
        if len(found) > limit:
            raise bad_xml_content(f"more than {limit} <{tag}> in {self.path}")
        for index, element in found:
            self._consumed.add(index)
            yield XmlIn(element, f"{self.path}/{tag}")

    def ignore(self, *tags: str) -> None:
        """Accept these elements without using them (read-only fields a client echoes back)."""
        for i, (name, _) in enumerate(self._children):
            if name in tags:
                self._consumed.add(i)

    def finish(self) -> None:
        """Raise for the first element nobody read: an unknown element is an error."""
        for i, (name, _) in enumerate(self._children):
            if i not in self._consumed:
                raise bad_xml_content(f"unknown element <{name}> in {self.path}")


def response_status(
    url: str, error: IsapiError | None = None, status_code: int = 1, extra: Mapping[str, Any] = ()
) -> bytes:
    code = error.status_code if error else status_code
    content: dict[str, Any] = {
        "requestURL": url,
        "statusCode": code,
        "statusString": STATUS_STRINGS.get(code, "Device Error"),
        "subStatusCode": error.sub_status if error else ("ok" if code == 1 else "rebootRequired"),
    }
    if error and error.message:
        content["errorMsg"] = error.message
    content.update(error.extra if error else {})
    content.update(dict(extra))
    return render("ResponseStatus", content)
