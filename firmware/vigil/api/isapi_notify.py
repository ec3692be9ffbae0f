"""ISAPI mail, FTP and HTTP-host settings, and their "test" buttons.

Resources:

- `GET|PUT /ISAPI/System/Network/mailing` (`mailingList` of one `mailing`; a PUT may send the
  `mailing` alone), `GET|PUT .../mailing/1`, `POST|PUT .../mailing/test`.
- `GET|PUT /ISAPI/System/Network/ftp` (`FTPNotificationList` of one `FTPNotification`, or the
  `FTPNotification` alone), `GET|PUT .../ftp/1`, `POST|PUT .../ftp/test`.
- `GET|PUT|POST /ISAPI/Event/notification/httpHosts` (`HttpHostNotificationList`: a PUT
  replaces the list, a POST adds one host and answers its `id`), `GET|PUT|DELETE
  .../httpHosts/{id}` (a PUT to a free id 1-4 creates that host), `POST|PUT
  .../httpHosts/{id}/test`.

What was chosen:

- Passwords (`smtp/password`, `password`) go to the credentials store, never to the
  configuration, and only after the configuration change was accepted. A GET never shows
  one (as Hikvision devices); a PUT without one, or with an empty one (what form clients
  echo back), keeps the stored password. Deleting an HTTP host forgets its password.
- Addresses: `addressingFormatType` `ipaddress` (`ipAddress`, `ipv6Address`; `ipV6Address`
  read too) or `hostname` (`hostName`); without it, whichever is filled in. An address must be
  a valid IP address or host name; Hikvision's blank `0.0.0.0` means none.
- Mail: `enableSSL` is implicit TLS (465), `enableTLS` (or `startTLS`, which some clients
  send) is STARTTLS and wins over `enableSSL`; neither is a plain session.
  `enableAuthorization` with `accountName`; at most 3 receivers with an address (blank
  receiver slots, which Hikvision shows three of, are dropped; a GET shows three slots);
  `attachment/snapshot` `enabled` and `interval` (seconds between the 3 pictures).
- FTP: `useSSL` is FTPS (explicit TLS); `annoyftp` (Hikvision's spelling; `anonymous` read
  too) is an anonymous login; `uploadPicture` false turns the upload off like `enabled`.
  `uploadPath`: `pathDepth` 0-2, levels `customize` (the fixed folder `topDirName`) then
  `time_date` (a `yyyy-mm-dd` folder per day): other folder rules, SFTP, video clips and
  active mode are refused, naming the element. Picture-naming elements are accepted and
  ignored (names are always `<IP>_<ch>_<time>_<EVENT>.jpg`).
- HTTP hosts: `url` is the path, or a whole `http(s)://host:port/path` URL that sets
  protocol, address and port unless those elements say otherwise; `parameterFormatType` XML
  only; `httpAuthenticationMethod` `none`, `MD5digest` (digest; `digest` read too) or Vigil's
  `basic`.
- `verifyCertificate` (Vigil's) under `smtp`, `FTPNotification` and `HttpHostNotification`:
  whether TLS peers' certificates are checked (true by default).
- Unknown elements and bad values are a 400 naming the element; nothing is changed.
- The tests run one attempt with the sent (unsaved) settings, or the stored ones without a
  body, and the sent or stored password. They answer ResponseStatus OK, or a 500 with
  `subStatusCode` `testFailed` whose `errorMsg` is the peer's refusal (`535 5.7.8 ...`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from vigil.api.context import NotifyTests, context
from vigil.api.errors import IsapiError, bad_parameters, not_found
from vigil.api.io import checked, config_change, ok, read_xml, xml_response
from vigil.api.xml import XmlIn, render
from vigil.config.events import EventSettings, FtpSettings, HttpHost, MailReceiver, MailSettings
from vigil.config.model import Config
from vigil.events.linkage import ActionFailed
from vigil.security.credentials import check_secret, http_host_name

routes = web.RouteTableDef()

MAILING = "/ISAPI/System/Network/mailing"
FTP = "/ISAPI/System/Network/ftp"
HTTP_HOSTS = "/ISAPI/Event/notification/httpHosts"
RECEIVER_SLOTS = 3
MAX_HTTP_HOSTS = 4
HOST_NAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?",
    re.ASCII,
)
BLANK_ADDRESS = "0.0.0.0"
AUTH_NAMES = {"none": "none", "digest": "MD5digest", "basic": "basic"}
AUTH_BY_NAME = {"none": "none", "md5digest": "digest", "digest": "digest", "basic": "basic"}
DATE_RULE, FOLDER_RULE = "time_date", "customize"
DIR_LEVELS = ("top", "sub", "three", "four", "five", "six")
FTP_IGNORED = ("picArchivingInterval", "picNameRuleType", "picNamePrefix", "ftpPicNameRuleType",
               "FTPPicNameRule", "passwordLen")  # fmt: skip

# Which element a refused setting came from.
MAIL_ELEMENTS = {
    "host": "hostName",
    "port": "portNo",
    "user": "accountName",
    "sender_name": "sender/name",
    "sender_address": "sender/emailAddress",
    "receivers": "receiverList",
    "picture_interval_s": "attachment/snapshot/interval",
}
FTP_ELEMENTS = {"host": "hostName", "port": "portNo", "user": "userName",
                "directory": "topDirName"}  # fmt: skip
HOST_ELEMENTS = {"id": "id", "host": "hostName", "port": "portNo", "path": "url",
                 "user": "userName", "protocol": "protocolType"}  # fmt: skip


def _test_failed(exc: ActionFailed) -> IsapiError:
    return IsapiError(500, 3, "testFailed", str(exc))


async def _optional_xml(request: web.Request, roots: tuple[str, ...]) -> XmlIn | None:
    """A test's body: the settings to try, or None to try the stored ones."""
    if not request.body_exists:
        return None
    return await read_xml(request, roots)


def _password(doc: XmlIn) -> str | None:
    """The sent password; None when absent or empty (the stored one stays)."""
    value = doc.text("password", max_len=512)
    if not value:
        return None
    try:
        check_secret(value)
    except ValueError as exc:
        raise bad_parameters(f"<password>: {exc}") from None
    return value


async def _save_secret(request: web.Request, name: str, password: str | None) -> None:
    if password is not None:
        await asyncio.to_thread(context(request).events.credentials.set, name, password)


async def _save_events(
    request: web.Request, change: Callable[[EventSettings], EventSettings]
) -> None:
    def apply(config: Config) -> Config:
        return dataclasses.replace(config, events=change(config.events))

    await config_change(request, apply)


def _one_id(request: web.Request) -> None:
    """Mail and FTP have one configuration each: id 1."""
    if request.match_info["id"] != "1":
        raise not_found(f"no such id {request.match_info['id'][:8]}; there is only 1")


def _check_id(doc: XmlIn, expected: int) -> None:
    if doc.int("id", expected) != expected:
        raise bad_parameters(f"<id> must be {expected}")


# -- addresses ---------------------------------------------------------------------------------
def _address_doc(host: str) -> dict[str, str]:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return {"addressingFormatType": "hostname", "hostName": host}
    tag = "ipAddress" if address.version == 4 else "ipv6Address"
    return {"addressingFormatType": "ipaddress", tag: host}


def _ip(value: str, tag: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise bad_parameters(f"<{tag}> {value[:64]!r} is not an IP address") from None
    if address.version != version:
        raise bad_parameters(f"<{tag}> {value[:64]!r} is not an IPv{version} address")
    return "" if value == BLANK_ADDRESS else value


def _host_name(value: str) -> str:
    if not HOST_NAME.fullmatch(value) or value.replace(".", "").isdigit():
        raise bad_parameters(f"<hostName> {value[:64]!r} is not a host name")
    return value


def _parse_address(doc: XmlIn, current: str) -> str:
    """The host from `addressingFormatType` and its element; `current` if none was sent."""
    kind = doc.text("addressingFormatType")
    name = doc.text("hostName", max_len=253)
    v4 = doc.text("ipAddress", max_len=64)
    v6 = doc.text("ipv6Address", max_len=64) or doc.text("ipV6Address", max_len=64)
    if kind is None:
        kind = "hostname" if name else "ipaddress" if (v4 or v6) else None
    if kind is None:
        return current if (name, v4, v6) == (None, None, None) else ""
    if kind == "hostname":
        return _host_name(name) if name else ""
    if kind == "ipaddress":
        if v6:
            return _ip(v6, "ipv6Address", 6)
        return _ip(v4, "ipAddress", 4) if v4 else ""
    raise bad_parameters(f"<addressingFormatType> {kind[:16]!r} is ipaddress or hostname")


def _host_of_url(text: str) -> str:
    """A URL's host, checked as the address elements are."""
    try:
        version = ipaddress.ip_address(text).version
    except ValueError:
        return _host_name(text)
    return _ip(text, "url", version)


# -- mailing -----------------------------------------------------------------------------------
def _mailing_doc(settings: MailSettings) -> dict[str, Any]:
    receivers = [*settings.receivers, *[MailReceiver()] * RECEIVER_SLOTS][:RECEIVER_SLOTS]
    return {
        "id": 1,
        "sender": {
            "name": settings.sender_name,
            "emailAddress": settings.sender_address,
            "smtp": {
                "enableAuthorization": settings.auth,
                "enableSSL": settings.security == "SSL",
                "enableTLS": settings.security == "STARTTLS",
                **_address_doc(settings.host),
                "portNo": settings.port,
                "accountName": settings.user,
                "verifyCertificate": settings.verify_certificate,
            },
        },
        "receiverList": {
            "receiver": [
                {"id": i, "name": r.name, "emailAddress": r.address}
                for i, r in enumerate(receivers, 1)
            ]
        },
        "attachment": {
            "snapshot": {
                "enabled": settings.attach_pictures,
                "interval": settings.picture_interval_s,
            }
        },
    }


def _security(doc: XmlIn, current: str) -> str:
    ssl = doc.bool("enableSSL")
    tls = [doc.bool("enableTLS"), doc.bool("startTLS")]
    if any(tls):
        return "STARTTLS"
    if ssl is not None:
        return "SSL" if ssl else "none"
    return "none" if False in tls and current == "STARTTLS" else current


def _parse_smtp(doc: XmlIn, current: MailSettings, changes: dict[str, Any]) -> str | None:
    changes["auth"] = doc.bool("enableAuthorization", current.auth)
    changes["security"] = _security(doc, current.security)
    changes["host"] = _parse_address(doc, current.host)
    changes["port"] = doc.int("portNo", current.port)
    changes["user"] = doc.text("accountName", current.user)
    changes["verify_certificate"] = doc.bool("verifyCertificate", current.verify_certificate)
    password = _password(doc)
    doc.finish()
    return password


def _parse_receivers(doc: XmlIn) -> list[MailReceiver]:
    receivers = []
    for receiver in doc.children("receiver", limit=8):
        receiver.ignore("id")
        name = receiver.text("name", "") or ""
        address = receiver.text("emailAddress", "") or ""
        receiver.finish()
        if address:
            receivers.append(MailReceiver(name=name, address=address))
        elif name:
            raise bad_parameters(f"<receiver> {name[:32]!r} has no <emailAddress>")
    doc.finish()
    if len(receivers) > RECEIVER_SLOTS:
        raise bad_parameters(f"<receiverList>: at most {RECEIVER_SLOTS} receivers")
    return receivers


def _parse_attachment(doc: XmlIn, current: MailSettings, changes: dict[str, Any]) -> None:
    snapshot = doc.child("snapshot")
    doc.finish()
    if snapshot is not None:
        changes["attach_pictures"] = snapshot.bool("enabled", current.attach_pictures)
        changes["picture_interval_s"] = snapshot.int("interval", current.picture_interval_s)
        snapshot.finish()


def parse_mailing(doc: XmlIn, current: MailSettings) -> tuple[MailSettings, str | None]:
    """A `mailing` document applied to `current`: the settings and the sent password."""
    _check_id(doc, 1)
    changes: dict[str, Any] = {}
    password = None
    sender = doc.child("sender")
    if sender is not None:
        changes["sender_name"] = sender.text("name", current.sender_name)
        changes["sender_address"] = sender.text("emailAddress", current.sender_address)
        smtp = sender.child("smtp")
        if smtp is not None:
            password = _parse_smtp(smtp, current, changes)
        sender.finish()
    receivers = doc.child("receiverList")
    if receivers is not None:
        changes["receivers"] = _parse_receivers(receivers)
    attachment = doc.child("attachment")
    if attachment is not None:
        _parse_attachment(attachment, current, changes)
    doc.finish()
    return checked(current, MAIL_ELEMENTS, "mailing", **changes), password


# -- FTP ---------------------------------------------------------------------------------------
def _upload_path_doc(settings: FtpSettings) -> dict[str, Any]:
    levels = ([(FOLDER_RULE, settings.directory)] if settings.directory else []) + (
        [(DATE_RULE, "")] if settings.dated_folders else []
    )
    doc: dict[str, Any] = {"pathDepth": len(levels)}
    padded = [*levels, ("none", ""), ("none", "")][:2]
    for level, (rule, name) in zip(("top", "sub"), padded, strict=True):
        doc[f"{level}DirNameRule"], doc[f"{level}DirName"] = rule, name
    return doc


def _ftp_doc(settings: FtpSettings) -> dict[str, Any]:
    return {
        "id": 1,
        "enabled": settings.enabled,
        "useSSL": settings.protocol == "FTPS",
        **_address_doc(settings.host),
        "portNo": settings.port,
        "userName": settings.user,
        "annoyftp": settings.anonymous,
        "passiveModeEnabled": True,
        "uploadPicture": settings.enabled,
        "uploadVideoClip": False,
        "uploadPath": _upload_path_doc(settings),
        "uploadProtocolType": "FTP",
        "verifyCertificate": settings.verify_certificate,
    }


def _parse_upload_path(doc: XmlIn, changes: dict[str, Any]) -> None:
    depth = doc.int("pathDepth", 0)
    levels = [
        (doc.text(f"{lv}DirNameRule", "none"), doc.text(f"{lv}DirName", "")) for lv in DIR_LEVELS
    ]
    doc.finish()
    if depth is None or not 0 <= depth <= 2:
        raise bad_parameters("<pathDepth>: 0 to 2 folders (a fixed folder, then the day's)")
    rules = [rule for rule, _ in levels[:depth]]
    if rules not in ([], [FOLDER_RULE], [DATE_RULE], [FOLDER_RULE, DATE_RULE]):
        raise bad_parameters(
            f"<uploadPath>: folder rules {', '.join(map(str, rules))} are not supported; "
            f"use {FOLDER_RULE} (a fixed folder) then {DATE_RULE} (yyyy-mm-dd)"
        )
    directory = (levels[0][1] or "") if rules[:1] == [FOLDER_RULE] else ""
    if rules[:1] == [FOLDER_RULE] and not directory:
        raise bad_parameters(f"<topDirName>: the {FOLDER_RULE} folder needs a name")
    changes["directory"] = directory
    changes["dated_folders"] = DATE_RULE in rules


def _refuse_unless(value: str | bool | None, allowed: object, element: str, why: str) -> None:
    if value is not None and value != allowed:
        raise bad_parameters(f"<{element}> {value}: {why}")


def parse_ftp(doc: XmlIn, current: FtpSettings) -> tuple[FtpSettings, str | None]:
    """An `FTPNotification` applied to `current`: the settings and the sent password."""
    _check_id(doc, 1)
    changes: dict[str, Any] = {}
    enabled = [doc.bool("enabled"), doc.bool("uploadPicture")]
    sent = [e for e in enabled if e is not None]
    changes["enabled"] = all(sent) if sent else current.enabled
    use_ssl = doc.bool("useSSL")
    if use_ssl is not None:
        changes["protocol"] = "FTPS" if use_ssl else "FTP"
    changes["host"] = _parse_address(doc, current.host)
    changes["port"] = doc.int("portNo", current.port)
    changes["user"] = doc.text("userName", current.user)
    anonymous = [doc.bool("annoyftp"), doc.bool("anonymous")]
    changes["anonymous"] = next((a for a in anonymous if a is not None), current.anonymous)
    changes["verify_certificate"] = doc.bool("verifyCertificate", current.verify_certificate)
    _refuse_unless(doc.bool("passiveModeEnabled"), True, "passiveModeEnabled", "passive mode only")
    _refuse_unless(doc.bool("uploadVideoClip"), False, "uploadVideoClip", "pictures only")
    protocol = doc.text("uploadProtocolType")
    _refuse_unless(protocol and protocol.upper(), "FTP", "uploadProtocolType", "FTP or FTPS only")
    path = doc.child("uploadPath")
    if path is not None:
        _parse_upload_path(path, changes)
    password = _password(doc)
    doc.ignore(*FTP_IGNORED)
    doc.finish()
    return checked(current, FTP_ELEMENTS, "FTPNotification", **changes), password


# -- mail and FTP: one account each ---------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Account:
    """A notification with one account (mail, FTP): its document alone or in its list of one,
    at `path` and `path/1`, and its test at `path/test`."""

    path: str
    list_tag: str
    item_tag: str
    field: str  # of EventSettings
    secret: str  # its name in the credentials store
    doc: Callable[[Any], dict[str, Any]]
    parse: Callable[[XmlIn, Any], tuple[Any, str | None]]
    test: Callable[[NotifyTests, Any, str], Awaitable[None]]

    def current(self, request: web.Request) -> Any:
        return getattr(context(request).store.current.events, self.field)

    def item(self, doc: XmlIn) -> XmlIn:
        """The item of a list (exactly one), or the document itself."""
        if doc.name != self.list_tag:
            return doc
        found = list(doc.children(self.item_tag, limit=1))
        doc.finish()
        if not found:
            raise bad_parameters(f"<{self.list_tag}> needs its <{self.item_tag}>")
        return found[0]

    async def get_list(self, request: web.Request) -> web.Response:
        item = self.doc(self.current(request))
        return xml_response(render(self.list_tag, {self.item_tag: item}))

    async def get_one(self, request: web.Request) -> web.Response:
        _one_id(request)
        return xml_response(render(self.item_tag, self.doc(self.current(request))))

    async def put(self, request: web.Request) -> web.Response:
        if "id" in request.match_info:
            _one_id(request)
        doc = self.item(await read_xml(request, (self.list_tag, self.item_tag)))
        settings, password = self.parse(doc, self.current(request))
        await _save_events(request, lambda e: dataclasses.replace(e, **{self.field: settings}))
        await _save_secret(request, self.secret, password)
        return ok(request)

    async def run_test(self, request: web.Request) -> web.Response:
        ctx = context(request)
        settings, password = self.current(request), None
        doc = await _optional_xml(request, (self.list_tag, self.item_tag))
        if doc is not None:
            settings, password = self.parse(self.item(doc), settings)
        try:
            await self.test(
                ctx.events.notify, settings, password or ctx.events.credentials.get(self.secret)
            )
        except ActionFailed as exc:
            raise _test_failed(exc) from None
        return ok(request)

    def serve(self) -> None:
        routes.get(self.path)(self.get_list)
        routes.put(self.path)(self.put)
        routes.post(f"{self.path}/test")(self.run_test)
        routes.put(f"{self.path}/test")(self.run_test)
        routes.get(self.path + "/{id}")(self.get_one)
        routes.put(self.path + "/{id}")(self.put)


Account(
    MAILING, "mailingList", "mailing", "mailing", "mail", _mailing_doc, parse_mailing,
    lambda notify, settings, password: notify.test_mail(settings, password),
).serve()  # fmt: skip
Account(
    FTP, "FTPNotificationList", "FTPNotification", "ftp", "ftp", _ftp_doc, parse_ftp,
    lambda notify, settings, password: notify.test_ftp(settings, password),
).serve()  # fmt: skip


# -- HTTP hosts --------------------------------------------------------------------------------
def _host_doc(host: HttpHost) -> dict[str, Any]:
    return {
        "id": host.id,
        "url": host.path,
        "protocolType": host.protocol,
        "parameterFormatType": "XML",
        **_address_doc(host.host),
        "portNo": host.port,
        "userName": host.user,
        "httpAuthenticationMethod": AUTH_NAMES[host.auth],
        "verifyCertificate": host.verify_certificate,
    }


def _parse_url(text: str, changes: dict[str, Any]) -> None:
    if not text.lower().startswith(("http://", "https://")):
        changes["path"] = text or "/"
        return
    try:
        url = urllib.parse.urlsplit(text)
        port = url.port
    except ValueError:
        raise bad_parameters(f"<url> {text[:64]!r} is not a URL") from None
    changes["protocol"] = url.scheme.upper()
    changes["host"] = _host_of_url(url.hostname or "")
    changes["port"] = port or (443 if url.scheme.lower() == "https" else 80)
    changes["path"] = (url.path or "/") + (f"?{url.query}" if url.query else "")


def parse_http_host(doc: XmlIn, current: HttpHost) -> tuple[HttpHost, str | None]:
    """An `HttpHostNotification` applied to `current`: the host and the sent password."""
    changes: dict[str, Any] = {"id": doc.int("id", current.id)}
    url = doc.text("url", max_len=512)
    if url is not None:
        _parse_url(url, changes)
    protocol = doc.text("protocolType")
    if protocol is not None:
        changes["protocol"] = protocol.upper()
    _refuse_unless(doc.text("parameterFormatType", "XML").upper(), "XML", "parameterFormatType",
                   "alerts are posted as XML")  # fmt: skip
    # The address elements win over the URL's host, unless they are left blank.
    url_host = changes.get("host", "")
    changes["host"] = _parse_address(doc, url_host or current.host) or url_host
    changes["port"] = doc.int("portNo", changes.get("port", current.port))
    changes["user"] = doc.text("userName", current.user)
    method = doc.text("httpAuthenticationMethod")
    if method is not None:
        if method.lower() not in AUTH_BY_NAME:
            raise bad_parameters(
                f"<httpAuthenticationMethod> {method[:16]!r}: none, MD5digest or basic"
            )
        changes["auth"] = AUTH_BY_NAME[method.lower()]
    changes["verify_certificate"] = doc.bool("verifyCertificate", current.verify_certificate)
    password = _password(doc)
    doc.finish()
    # Replaced first, then checked: `checked_replace` has a `path` parameter of its own, which
    # would swallow the host's `path`.
    host = dataclasses.replace(current, **changes)
    return checked(host, HOST_ELEMENTS, "HttpHostNotification"), password


def _hosts(request: web.Request) -> list[HttpHost]:
    return context(request).store.current.events.http_hosts


def _url_host_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isdigit() and 1 <= int(raw) <= MAX_HTTP_HOSTS):
        raise not_found(f"no HTTP host {raw[:8]}; ids are 1 to {MAX_HTTP_HOSTS}")
    return int(raw)


def _stored_host(request: web.Request) -> HttpHost | None:
    host_id = _url_host_id(request)
    return next((h for h in _hosts(request) if h.id == host_id), None)


async def _save_hosts(
    request: web.Request, hosts: list[HttpHost], passwords: Mapping[int, str | None]
) -> None:
    before = {h.id for h in _hosts(request)}
    ordered = sorted(hosts, key=lambda h: h.id)
    await _save_events(request, lambda e: dataclasses.replace(e, http_hosts=ordered))
    credentials = context(request).events.credentials
    gone = [http_host_name(i) for i in before - {h.id for h in hosts}]
    if gone:
        await asyncio.to_thread(credentials.remove, *gone)
    for host_id, password in passwords.items():
        await _save_secret(request, http_host_name(host_id), password)


@routes.get(HTTP_HOSTS)
async def get_http_hosts(request: web.Request) -> web.Response:
    content = {"HttpHostNotification": [_host_doc(h) for h in _hosts(request)]}
    return xml_response(render("HttpHostNotificationList", content))


@routes.put(HTTP_HOSTS)
async def put_http_hosts(request: web.Request) -> web.Response:
    doc = await read_xml(request, "HttpHostNotificationList")
    stored = {h.id: h for h in _hosts(request)}
    hosts: list[HttpHost] = []
    passwords: dict[int, str | None] = {}
    for index, item in enumerate(doc.children("HttpHostNotification", limit=MAX_HTTP_HOSTS), 1):
        host_id = item.int("id", index) or index
        host, password = parse_http_host(item, stored.get(host_id, HttpHost(id=host_id)))
        if host.id in passwords:
            raise bad_parameters(f"<id> {host.id} appears twice")
        hosts.append(host)
        passwords[host.id] = password
    doc.finish()
    await _save_hosts(request, hosts, passwords)
    return ok(request)


@routes.post(HTTP_HOSTS)
async def add_http_host(request: web.Request) -> web.Response:
    doc = await read_xml(request, "HttpHostNotification")
    hosts = _hosts(request)
    free = [i for i in range(1, MAX_HTTP_HOSTS + 1) if i not in {h.id for h in hosts}]
    if not free:
        raise bad_parameters(f"at most {MAX_HTTP_HOSTS} HTTP hosts")
    host, password = parse_http_host(doc, HttpHost(id=free[0]))
    if host.id not in free:
        raise bad_parameters(f"<id> {host.id} is taken")
    await _save_hosts(request, [*hosts, host], {host.id: password})
    return ok(request, extra={"id": host.id})


@routes.get(HTTP_HOSTS + "/{id}")
async def get_http_host(request: web.Request) -> web.Response:
    host = _stored_host(request)
    if host is None:
        raise not_found(f"no HTTP host {request.match_info['id']}")
    return xml_response(render("HttpHostNotification", _host_doc(host)))


@routes.put(HTTP_HOSTS + "/{id}")
async def put_http_host(request: web.Request) -> web.Response:
    host_id = _url_host_id(request)
    current = _stored_host(request) or HttpHost(id=host_id)
    host, password = parse_http_host(await read_xml(request, "HttpHostNotification"), current)
    if host.id != host_id:
        raise bad_parameters("<id> does not match the URL")
    others = [h for h in _hosts(request) if h.id != host_id]
    await _save_hosts(request, [*others, host], {host_id: password})
    return ok(request)


@routes.delete(HTTP_HOSTS + "/{id}")
async def delete_http_host(request: web.Request) -> web.Response:
    host = _stored_host(request)
    if host is None:
        raise not_found(f"no HTTP host {request.match_info['id']}")
    await _save_hosts(request, [h for h in _hosts(request) if h.id != host.id], {})
    return ok(request)


@routes.post(HTTP_HOSTS + "/{id}/test")
@routes.put(HTTP_HOSTS + "/{id}/test")
async def test_http_host(request: web.Request) -> web.Response:
    ctx = context(request)
    host_id = _url_host_id(request)
    host, password = _stored_host(request) or HttpHost(id=host_id), None
    doc = await _optional_xml(request, ("HttpHostNotification",))
    if doc is not None:
        host, password = parse_http_host(doc, host)
        if host.id != host_id:
            raise bad_parameters("<id> does not match the URL")
    if not host.host:
        raise bad_parameters(f"HTTP host {host_id} has no address")
    stored = ctx.events.credentials.get(http_host_name(host_id))
    try:
        await ctx.events.notify.test_http_host(host, password or stored)
    except ActionFailed as exc:
        raise _test_failed(exc) from None
    return ok(request)
