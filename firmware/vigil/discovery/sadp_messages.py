"""SADP-style discovery messages (Probe, ProbeMatch): strict parsing and building, both ends.

The device (`vigil.discovery.sadp`) and the host CLI (`vigil_tools.sadp_client`) share this module
so that both agree on the wire format (SPEC §1). Datagrams come from anyone on the LAN, so parsing
is strict: size and encoding are checked before the XML parser runs, the parser is defusedxml
with DTDs and entities forbidden, and every structural surprise (duplicate element, nesting,
unknown type, over-long value) is a `SadpError` naming what was wrong.
"""

from __future__ import annotations

import ipaddress
import re
import uuid as uuid_module
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vigil.security.safexml import RejectedXml, parse_untrusted

SADP_PORT = 37020
SADP_GROUP = "239.255.255.250"
MAX_DATAGRAM = 8192
MAX_VALUE = 512
MAX_PASSWORD = 1024

INQUIRY = "inquiry"
ACTIVATE = "activate"
UPDATE = "update"
REBOOT = "reboot"
RESET_PASSWORD = "resetPassword"
TYPES = (INQUIRY, ACTIVATE, UPDATE, REBOOT, RESET_PASSWORD)
COMMAND_TYPES = (ACTIVATE, UPDATE, REBOOT, RESET_PASSWORD)

UPDATE_FIELDS = ("IPv4Address", "IPv4SubnetMask", "IPv4Gateway", "DHCP", "HttpPort")
# What the device itself knows, in ProbeMatch order; Uuid/Types come first and the key last.
DEVICE_FIELDS = (
    "DeviceType",
    "DeviceDescription",
    "DeviceSN",
    "CommandPort",
    "HttpPort",
    "MAC",
    "IPv4Address",
    "IPv4SubnetMask",
    "IPv4Gateway",
    "IPv6Address",
    "IPv6Gateway",
    "IPv6MaskLen",
    "DHCP",
    "AnalogChannelNum",
    "DigitalChannelNum",
    "SoftwareVersion",
    "DSPVersion",
    "BootTime",
    "Activated",
    "PasswordResetAbility",
)
PROBE_MATCH_FIELDS = ("Uuid", "Types", *DEVICE_FIELDS, "PublicKey", "Challenge")

SUCCESS = "success"
FAILED = "failed"
# Machine-friendly failure reasons; the daemon may add its own in the same style.
REASONS = (
    "badPassword",
    "alreadyActivated",
    "weakPassword",
    "locked",
    "notActivated",
    "badRequest",
    "physicalResetRequired",
    "internalError",
)
REASON_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9]{0,31}")

_XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'
# XML 1.0 Char production minus the C0 controls ElementTree would write but no parser reads back.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MAC = re.compile(r"[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}")


class SadpError(ValueError):
    """A datagram or a value that is not an acceptable SADP message; the text says why."""


class ForeignMessage(SadpError):
    """A well-formed SADP message that is not a Probe, such as another device's ProbeMatch."""


@dataclass(frozen=True)
class Probe:
    """A client's request. `password` is sealed (base64); `changes` only for `update`."""

    uuid: str
    types: str
    mac: str = ""
    password: str = ""
    changes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeMatch:
    """A device's reply: Uuid and Types, then every other element in document order."""

    uuid: str
    types: str
    fields: dict[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    @property
    def mac(self) -> str:
        return self.get("MAC").lower()

    @property
    def result(self) -> str:
        return self.get("Result")

    @property
    def reason(self) -> str:
        return self.get("Reason")


def new_uuid() -> str:
    """A probe identifier in the upper-case form SADP tools use."""
    return str(uuid_module.uuid4()).upper()


def is_true(value: str) -> bool:
    return value.strip().lower() == "true"


def bool_text(value: bool) -> str:
    return "true" if value else "false"


def normalize_mac(text: str) -> str:
    """`aa:bb:cc:dd:ee:ff`, `AA-BB-…` or `aabbccddeeff` -> `aa-bb-cc-dd-ee-ff`."""
    lowered = text.strip().lower()
    if not _MAC.fullmatch(lowered):
        raise SadpError(f"{text!r} is not a MAC address")
    digits = lowered.replace(":", "").replace("-", "")
    return "-".join(digits[i : i + 2] for i in range(0, 12, 2))


def _value_limit(name: str) -> int:
    return MAX_PASSWORD if name == "Password" else MAX_VALUE


def _check_value(name: str, value: str) -> None:
    if len(value) > _value_limit(name):
        raise SadpError(f"<{name}> is longer than {_value_limit(name)} characters")
    if _NOT_XML_CHAR.search(value):
        raise SadpError(f"<{name}> contains characters XML cannot carry")


def _build(root_name: str, items: Iterable[tuple[str, str]]) -> bytes:
    root = ET.Element(root_name)
    for name, value in items:
        _check_value(name, value)
        ET.SubElement(root, name).text = value
    # Explicit end tags: some SADP parsers in the field do not read `<X />`.
    body = ET.tostring(root, encoding="unicode", short_empty_elements=False)
    data = (_XML_DECLARATION + body).encode("utf-8")
    if len(data) > MAX_DATAGRAM:
        raise SadpError(f"the {root_name} would be {len(data)} bytes, over {MAX_DATAGRAM}")
    return data


def build_probe(probe: Probe) -> bytes:
    if probe.types not in TYPES:
        raise SadpError(f"{probe.types!r} is not a SADP type")
    if not probe.uuid:
        raise SadpError("a probe needs a Uuid")
    items = [("Uuid", probe.uuid), ("Types", probe.types)]
    if probe.mac:
        items.append(("MAC", probe.mac))
    if probe.password:
        items.append(("Password", probe.password))
    if probe.types == UPDATE:
        unknown = set(probe.changes) - set(UPDATE_FIELDS)
        if unknown:
            raise SadpError(f"update cannot change {', '.join(sorted(unknown))}")
        items += [(name, probe.changes[name]) for name in UPDATE_FIELDS if name in probe.changes]
    return _build("Probe", items)


def build_inquiry_match(
    uuid: str, device_fields: Mapping[str, str], public_key: str, challenge: str
) -> bytes:
    """The answer to an inquiry: every DEVICE_FIELDS entry in order, empty when not given."""
    items = [("Uuid", uuid), ("Types", INQUIRY)]
    items += [(name, device_fields.get(name, "")) for name in DEVICE_FIELDS]
    items += [("PublicKey", public_key), ("Challenge", challenge)]
    return _build("ProbeMatch", items)


def build_command_reply(uuid: str, types: str, mac: str, reason: str | None = None) -> bytes:
    """The answer to a command: success when `reason` is None, otherwise failed with it."""
    if types not in COMMAND_TYPES:
        raise SadpError(f"{types!r} is not a SADP command")
    items = [("Uuid", uuid), ("Types", types), ("MAC", mac)]
    if reason is None:
        items.append(("Result", SUCCESS))
    else:
        if not REASON_PATTERN.fullmatch(reason):
            raise SadpError(f"{reason!r} is not a machine-friendly reason")
        items += [("Result", FAILED), ("Reason", reason)]
    return _build("ProbeMatch", items)


def _parse(data: bytes, *, nested_allowed: bool) -> tuple[str, dict[str, str]]:
    """Root tag and its leaf elements after every size, encoding and structure check."""
    if len(data) > MAX_DATAGRAM:
        raise SadpError(f"datagram of {len(data)} bytes is over {MAX_DATAGRAM}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SadpError("datagram is not UTF-8") from None
    text = text.removeprefix("\ufeff")
    try:
        # From a str, expat ignores the declared encoding: the bytes were decoded as UTF-8 above.
        root = parse_untrusted(text)
    except RejectedXml as exc:
        raise SadpError(str(exc)) from None
    elements: dict[str, str] = {}
    for child in root:
        if not isinstance(child.tag, str):
            continue  # comments and processing instructions carry nothing
        if child.tag in elements:
            raise SadpError(f"<{child.tag}> appears more than once")
        if len(child):
            if nested_allowed:
                continue
            raise SadpError(f"<{child.tag}> has child elements")
        value = (child.text or "").strip()
        if len(value) > _value_limit(child.tag):
            raise SadpError(f"<{child.tag}> is longer than {_value_limit(child.tag)} characters")
        elements[child.tag] = value
    return root.tag, elements


def _uuid_and_types(elements: dict[str, str]) -> tuple[str, str]:
    uuid = elements.get("Uuid", "")
    if not uuid:
        raise SadpError("the message has no Uuid")
    types = elements.get("Types", "")
    if not types:
        raise SadpError("the message has no Types")
    return uuid, types


def parse_probe(data: bytes) -> Probe:
    """A client's Probe; ForeignMessage for a well-formed ProbeMatch, SadpError otherwise."""
    root, elements = _parse(data, nested_allowed=False)
    if root == "ProbeMatch":
        raise ForeignMessage("a ProbeMatch, not a Probe")
    if root != "Probe":
        raise SadpError(f"root element <{root}> is not <Probe>")
    uuid, types = _uuid_and_types(elements)
    if types not in TYPES:
        raise SadpError(f"unknown Types {types[:40]!r}")
    changes = {n: elements[n] for n in UPDATE_FIELDS if n in elements} if types == UPDATE else {}
    return Probe(
        uuid=uuid,
        types=types,
        mac=elements.get("MAC", ""),
        password=elements.get("Password", ""),
        changes=changes,
    )


def parse_probe_match(data: bytes) -> ProbeMatch:
    """A device's ProbeMatch; nested elements (vendor extensions) are skipped, not refused."""
    root, elements = _parse(data, nested_allowed=True)
    if root != "ProbeMatch":
        raise SadpError(f"root element <{root}> is not <ProbeMatch>")
    uuid, types = _uuid_and_types(elements)
    rest = {k: v for k, v in elements.items() if k not in ("Uuid", "Types")}
    return ProbeMatch(uuid=uuid, types=types, fields=rest)


def _check_ipv4(name: str, value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise SadpError(f"{name} {value[:40]!r} is not an IPv4 address") from None


def check_update_changes(changes: Mapping[str, str]) -> dict[str, str]:
    """Validate the fields of an `update` one by one and return them normalized.

    Whether they make a usable configuration together (a static address needs a mask) is the
    configuration model's call; this only refuses values that cannot be what they claim.
    """
    if not changes:
        raise SadpError("an update changes nothing")
    unknown = set(changes) - set(UPDATE_FIELDS)
    if unknown:
        raise SadpError(f"update cannot change {', '.join(sorted(unknown))}")
    checked: dict[str, str] = {}
    for name, value in changes.items():
        if name == "DHCP":
            if value.lower() not in ("true", "false"):
                raise SadpError(f"DHCP {value[:40]!r} is not true or false")
            checked[name] = value.lower()
        elif name == "HttpPort":
            if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 65535:
                raise SadpError(f"HttpPort {value[:40]!r} is not a port number")
            checked[name] = str(int(value))
        elif name == "IPv4Gateway" and value == "":
            checked[name] = ""  # no gateway: a camera on an isolated segment
        elif name == "IPv4SubnetMask":
            mask = _check_ipv4(name, value)
            host_bits = ~int(ipaddress.IPv4Address(mask)) & 0xFFFFFFFF
            # ipaddress would also take a wildcard (0.0.0.255); a mask is ones, then zeros.
            if host_bits & (host_bits + 1):
                raise SadpError(f"IPv4SubnetMask {mask} is not a contiguous mask")
            checked[name] = mask
        else:
            checked[name] = _check_ipv4(name, value)
    return checked
