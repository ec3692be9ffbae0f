"""ISAPI Security resources: users, userCheck, adminAccesses, the IP filter."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from aiohttp import web

from vigil.api.auth import ADMINISTRATOR, AUTHENTICATED, record_operation, requires
from vigil.api.context import context
from vigil.api.errors import IsapiError, bad_parameters, invalid_operation
from vigil.api.io import by_url_id, config_change, ok, read_body, read_xml, xml_response
from vigil.api.xml import XmlIn, render
from vigil.config.model import PERMISSIONS, IpFilterSettings, PortSettings, User
from vigil.security.accounts import AccountError
from vigil.security.tls import MAX_PEM_BYTES, CertificateError

routes = web.RouteTableDef()


def _account_error(exc: AccountError) -> IsapiError:
    status = 403 if exc.reason == "invalidOperation" else 400
    return IsapiError(status, 4 if status == 403 else 6, exc.reason, exc.message)


# -- users --------------------------------------------------------------------------------------
def _user_doc(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "userName": user.name,
        "userLevel": user.level,
        "remotePermission": {name: user.may(name) for name in PERMISSIONS},
    }


def _parse_permissions(doc: XmlIn) -> list[str] | None:
    block = doc.child("remotePermission")
    if block is None:
        return None
    granted = [name for name in PERMISSIONS if block.bool(name, False)]
    block.finish()
    return granted


@routes.get("/ISAPI/Security/users")
@requires(ADMINISTRATOR)
async def list_users(request: web.Request) -> web.Response:
    users = context(request).store.current.users
    return xml_response(render("UserList", {"User": [_user_doc(u) for u in users]}))


@routes.post("/ISAPI/Security/users")
@requires(ADMINISTRATOR)
async def add_user(request: web.Request) -> web.Response:
    doc = await read_xml(request, "User")
    name = doc.text("userName", max_len=64)
    password = doc.text("password", max_len=128)
    level = doc.text("userLevel", "Viewer")
    permissions = _parse_permissions(doc)
    _check_login_password(request, doc)
    doc.ignore("id")
    doc.finish()
    if not name or not password:
        raise bad_parameters("<userName> and <password> are required")
    try:
        user = await context(request).accounts.add(name, level or "Viewer", password, permissions)
    except AccountError as exc:
        raise _account_error(exc) from None
    return ok(request, extra={"id": user.id})


def _user_by_id(request: web.Request) -> User:
    return by_url_id(request, context(request).store.current.users, "user")


@routes.get("/ISAPI/Security/users/{id}")
@requires(AUTHENTICATED)
async def get_user(request: web.Request) -> web.Response:
    user = _user_by_id(request)
    caller: User = request["user"]
    if caller.level != "Administrator" and caller.id != user.id:
        raise IsapiError(403, 4, "noPermission", "only an administrator sees other users")
    return xml_response(render("User", _user_doc(user)))


@routes.put("/ISAPI/Security/users/{id}")
@requires(AUTHENTICATED)
async def modify_user(request: web.Request) -> web.Response:
    user = _user_by_id(request)
    caller: User = request["user"]
    doc = await read_xml(request, "User")
    if doc.int("id", user.id) != user.id:
        raise bad_parameters("<id> does not match the URL")
    if doc.text("userName", user.name, max_len=64) != user.name:
        raise bad_parameters("a user name cannot be changed")
    level = doc.text("userLevel")
    permissions = _parse_permissions(doc)
    password = doc.text("password", max_len=128)
    _check_login_password(request, doc, required=password is not None)
    doc.finish()
    is_admin = caller.level == "Administrator"
    changes_rights = (level not in (None, user.level)) or permissions is not None
    if not is_admin and (caller.id != user.id or changes_rights):
        raise IsapiError(403, 4, "noPermission", "users may change only their own password")
    if user.level == "Administrator" and changes_rights:
        raise invalid_operation("the admin's level and rights are fixed")
    try:
        await context(request).accounts.modify(
            user.id, level=level, permissions=permissions, password=password
        )
    except AccountError as exc:
        raise _account_error(exc) from None
    return ok(request)


@routes.delete("/ISAPI/Security/users/{id}")
@requires(ADMINISTRATOR)
async def delete_user(request: web.Request) -> web.Response:
    user = _user_by_id(request)
    try:
        await context(request).accounts.delete(user.id)
    except AccountError as exc:
        raise _account_error(exc) from None
    return ok(request)


def _check_login_password(request: web.Request, doc: XmlIn, *, required: bool = True) -> None:
    """Setting a password needs the caller's own password again (`<loginPassword>`)."""
    given = doc.text("loginPassword", max_len=128)
    if given is None and not required:
        return
    caller: User = request["user"]
    if given is None or not context(request).accounts.verify(caller.name, given):
        raise IsapiError(403, 4, "loginPasswordError", "<loginPassword> is missing or wrong")


@routes.get("/ISAPI/Security/userCheck")
@requires(AUTHENTICATED)
async def user_check(request: web.Request) -> web.Response:
    user: User = request["user"]
    content = {
        "statusValue": 200,
        "statusString": "OK",
        "userName": user.name,
        "userLevel": user.level,
        "isActivated": True,
    }
    return xml_response(render("userCheck", content))


# -- ports --------------------------------------------------------------------------------------
def _ports_doc(ports: PortSettings) -> dict[str, Any]:
    rows = [
        (1, "HTTP", True, ports.http),
        (2, "HTTPS", ports.https_enabled, ports.https),
        (3, "RTSP", True, ports.rtsp),
    ]
    return {
        "AdminAccessProtocol": [
            {"id": i, "enabled": on, "protocol": name, "portNo": port} for i, name, on, port in rows
        ]
    }


@routes.get("/ISAPI/Security/adminAccesses")
async def get_admin_accesses(request: web.Request) -> web.Response:
    ports = context(request).store.current.ports
    return xml_response(render("AdminAccessProtocolList", _ports_doc(ports)))


@routes.put("/ISAPI/Security/adminAccesses")
@requires(ADMINISTRATOR)
async def put_admin_accesses(request: web.Request) -> web.Response:
    ctx = context(request)
    doc = await read_xml(request, "AdminAccessProtocolList")
    ports = ctx.store.current.ports
    changes: dict[str, Any] = {}
    for entry in doc.children("AdminAccessProtocol", limit=8):
        protocol = (entry.text("protocol") or "").upper()
        port = entry.int("portNo")
        enabled = entry.bool("enabled", True)
        entry.ignore("id")
        entry.finish()
        key = {"HTTP": "http", "HTTPS": "https", "RTSP": "rtsp"}.get(protocol)
        if key is None:
            raise bad_parameters(f"unknown protocol {protocol!r}")
        if port is not None:
            changes[key] = port
        if key == "https":
            changes["https_enabled"] = enabled
        elif not enabled:
            raise bad_parameters(f"{protocol} cannot be switched off")
    doc.finish()
    try:
        new_ports = dataclasses.replace(ports, **changes)
    except TypeError as exc:
        raise bad_parameters(str(exc)) from None
    try:
        await ctx.system.check_ports(new_ports)
    except OSError as exc:
        raise IsapiError(409, 4, "portConflict", f"cannot listen there: {exc}") from None
    await config_change(request, lambda c: dataclasses.replace(c, ports=new_ports))
    return ok(request)


# -- IP filter ----------------------------------------------------------------------------------
def _filter_entry_doc(index: int, entry: str) -> dict[str, Any]:
    if "-" in entry:
        first, last = (p.strip() for p in entry.split("-", 1))
        return {
            "id": index,
            "addressFilterType": "range",
            "AddressRange": {"startIPAddress": first, "endIPAddress": last},
        }
    net = ipaddress.ip_network(entry, strict=False)
    if net.num_addresses == 1:
        return {"id": index, "addressFilterType": "single", "ipAddress": str(net.network_address)}
    return {
        "id": index,
        "addressFilterType": "mask",
        "Mask": {"ipAddress": str(net.network_address), "prefixLength": net.prefixlen},
    }


def _parse_filter_entry(doc: XmlIn) -> str:
    kind = doc.text("addressFilterType", "single")
    doc.ignore("id", "permissionType")
    if kind == "single":
        entry = doc.text("ipAddress") or ""
    elif kind == "range":
        span = doc.child("AddressRange")
        if span is None:
            raise bad_parameters("a range needs <AddressRange>")
        entry = f"{span.text('startIPAddress')}-{span.text('endIPAddress')}"
        span.finish()
    elif kind == "mask":
        mask = doc.child("Mask")
        if mask is None:
            raise bad_parameters("a mask entry needs <Mask>")
        prefix = mask.int("prefixLength")
        subnet = mask.text("subnetMask")
        entry = f"{mask.text('ipAddress')}/{prefix if prefix is not None else subnet}"
        mask.finish()
    else:
        raise bad_parameters("addressFilterType is single, range or mask")
    doc.finish()
    return entry


@routes.get("/ISAPI/Security/IPFilter")
@routes.get("/ISAPI/System/Network/ipFilter")
async def get_ip_filter(request: web.Request) -> web.Response:
    settings = context(request).store.current.security.ip_filter
    content = {
        "enabled": settings.mode != "off",
        "permissionType": "deny" if settings.mode == "deny" else "allow",
        "IPFilterAddressList": {
            "IPFilterAddress": [_filter_entry_doc(i, e) for i, e in enumerate(settings.entries, 1)]
        },
    }
    return xml_response(render("IPFilter", content))


@routes.put("/ISAPI/Security/IPFilter")
@routes.put("/ISAPI/System/Network/ipFilter")
@requires(ADMINISTRATOR)
async def put_ip_filter(request: web.Request) -> web.Response:
    doc = await read_xml(request, "IPFilter")
    current = context(request).store.current.security.ip_filter
    enabled = doc.bool("enabled", current.mode != "off")
    kind = doc.text("permissionType", "deny" if current.mode == "deny" else "allow")
    if kind not in ("allow", "deny"):
        raise bad_parameters("permissionType is allow or deny")
    listing = doc.child("IPFilterAddressList")
    entries = current.entries
    if listing is not None:
        entries = [_parse_filter_entry(e) for e in listing.children("IPFilterAddress", limit=64)]
        listing.finish()
    doc.finish()
    new = IpFilterSettings(mode=kind if enabled else "off", entries=entries)
    await config_change(
        request,
        lambda c: dataclasses.replace(c, security=dataclasses.replace(c.security, ip_filter=new)),
    )
    return ok(request)


# -- authentication settings --------------------------------------------------------------------
ALGORITHM_NAMES = {"SHA256": ["SHA-256"], "MD5": ["MD5"], "MD5/SHA256": ["SHA-256", "MD5"]}


@routes.get("/ISAPI/Security/webCertificate")
async def get_web_certificate(request: web.Request) -> web.Response:
    settings = context(request).store.current.security
    algorithm = "/".join(sorted(a.replace("-", "") for a in settings.digest_algorithms))
    content = {
        "CertificateType": "digest/basic" if settings.basic_auth else "digest",
        "SecurityAlgorithm": {"algorithmType": algorithm},
    }
    return xml_response(render("WebCertificate", content))


@routes.put("/ISAPI/Security/webCertificate")
@requires(ADMINISTRATOR)
async def put_web_certificate(request: web.Request) -> web.Response:
    doc = await read_xml(request, "WebCertificate")
    security = context(request).store.current.security
    kind = doc.text("CertificateType", "digest/basic" if security.basic_auth else "digest")
    algorithms = security.digest_algorithms
    block = doc.child("SecurityAlgorithm")
    if block is not None:
        name = block.text("algorithmType", "")
        block.finish()
        if name not in ALGORITHM_NAMES:
            raise bad_parameters(f"algorithmType is one of {', '.join(ALGORITHM_NAMES)}")
        algorithms = ALGORITHM_NAMES[name]
    doc.finish()
    if kind not in ("digest", "digest/basic"):
        raise bad_parameters("CertificateType is digest or digest/basic")
    await config_change(
        request,
        lambda c: dataclasses.replace(
            c,
            security=dataclasses.replace(
                c.security, basic_auth=kind == "digest/basic", digest_algorithms=algorithms
            ),
        ),
    )
    return ok(request)


@routes.get("/ISAPI/Security/illegalLoginLock")
async def get_login_lock(request: web.Request) -> web.Response:
    settings = context(request).store.current.security
    content = {
        "enabled": settings.lockout_enabled,
        "maxIllegalLoginTimes": settings.lockout_attempts,
        "resumeTime": settings.lockout_minutes,
    }
    return xml_response(render("IllegalLoginLock", content))


@routes.put("/ISAPI/Security/illegalLoginLock")
@requires(ADMINISTRATOR)
async def put_login_lock(request: web.Request) -> web.Response:
    doc = await read_xml(request, "IllegalLoginLock")
    current = context(request).store.current.security
    changes = {
        "lockout_enabled": doc.bool("enabled", current.lockout_enabled),
        "lockout_attempts": doc.int("maxIllegalLoginTimes", current.lockout_attempts),
        "lockout_minutes": doc.int("resumeTime", current.lockout_minutes),
    }
    doc.finish()
    await config_change(
        request,
        lambda c: dataclasses.replace(c, security=dataclasses.replace(c.security, **changes)),
    )
    return ok(request)


# -- the HTTPS server certificate ---------------------------------------------------------------
SERVER_CERTIFICATE = "/ISAPI/Security/serverCertificate/certificate"


@routes.get(SERVER_CERTIFICATE)
async def get_server_certificate(request: web.Request) -> web.Response:
    about = await context(request).certificate.describe()
    content = {
        "subjectDN": about["subject"],
        "issuerDN": about["issuer"],
        "selfSigned": about["selfSigned"],
        "startDate": about["notBefore"],
        "endDate": about["notAfter"],
        "serialNumber": about["serialNumber"],
        "fingerprintSHA256": about["fingerprintSHA256"],
        "keyType": about["keyType"],
        "SubjectAltNameList": {"subjectAltName": about["subjectAltNames"]},
    }
    return xml_response(render("CertificateInfo", content))


@routes.put(SERVER_CERTIFICATE)
@requires(ADMINISTRATOR)
async def put_server_certificate(request: web.Request) -> web.Response:
    """The body is a PEM file: the certificate (then its chain) and its unencrypted key."""
    pem = await read_body(request, MAX_PEM_BYTES)
    try:
        about = await context(request).certificate.install(pem)
    except CertificateError as exc:
        raise IsapiError(400, 6, "invalidCertificate", str(exc)) from None
    record_operation(request, "remoteCertificateInstall", about["subject"])
    return ok(request)


@routes.post("/ISAPI/Security/serverCertificate/selfSignCert")
@requires(ADMINISTRATOR)
async def post_self_signed_certificate(request: web.Request) -> web.Response:
    await context(request).certificate.make_self_signed()
    record_operation(request, "remoteCertificateCreate", "self-signed")
    return ok(request)
