"""Mail, FTP and HTTP-host settings over ISAPI on a real vigild, with `hikvisionapi` and requests
(Digest): documents round trip without passwords, passwords land in the 0600 credentials file,
the "test" buttons reach real peers (aiosmtpd, pyftpdlib, an aiohttp alarm server) and name
their refusals, and bad documents change nothing. An alarm input's whole linkage (these three
with the relay, recording and the alert stream) is test_alarm_linkage."""

from __future__ import annotations

import json
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

from hikvisionapi import Client

from tests.alerts import parse_alert
from tests.integration.notify_peers import (
    FTP_PASSWORD,
    FTP_USER,
    HOST_PASSWORD,
    HOST_USER,
    MAIL_PASSWORD,
    MAIL_USER,
    AlarmServer,
    ftp_server,
    mail_server,
)
from tests.integration.test_users import add_user
from tests.vigild import ADMIN_PASSWORD, Vigild

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
MAILING = "/ISAPI/System/Network/mailing"
FTP = "/ISAPI/System/Network/ftp"
HOSTS = "/ISAPI/Event/notification/httpHosts"


def xml(reply: object) -> ET.Element:
    return ET.fromstring(reply.content)  # type: ignore[attr-defined]


def refused(reply: object, sub_status: str = "badParameters", status: int = 400) -> str:
    assert reply.status_code == status, reply.text  # type: ignore[attr-defined]
    assert xml(reply).findtext(f"{NS}subStatusCode") == sub_status, reply.text  # type: ignore[attr-defined]
    return xml(reply).findtext(f"{NS}errorMsg") or ""


def accepted(reply: object) -> ET.Element:
    assert reply.status_code == 200, reply.text  # type: ignore[attr-defined]
    assert xml(reply).findtext(f"{NS}statusCode") == "1"
    return xml(reply)


def delete(device: Vigild, path: str) -> object:
    return device.session().delete(f"{device.url}{path}", timeout=10)


def credentials_file(device: Vigild) -> Path:
    return device.data_dir / "secrets" / "credentials.json"


def stored_passwords(device: Vigild) -> dict[str, str]:
    path = credentials_file(device)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return json.loads(path.read_text())


def mailing_xml(port: int, *, password: str | None = MAIL_PASSWORD, receivers: int = 2,
                extra_smtp: str = "", security: str = "<enableTLS>true</enableTLS>",
                root: str = "mailingList") -> str:  # fmt: skip
    secret = f"<password>{password}</password>" if password is not None else ""
    slots = "".join(
        f"<receiver><id>{i}</id><name>Guard {i}</name>"
        f"<emailAddress>guard{i}@example.test</emailAddress></receiver>"
        for i in range(1, receivers + 1)
    )
    if receivers < 3:  # blank slots, as Hikvision clients send them
        slots += "<receiver><id>3</id><name></name><emailAddress></emailAddress></receiver>"
    mailing = (
        "<mailing><id>1</id><sender><name>Lobby Camera</name>"
        "<emailAddress>lobby@example.test</emailAddress><smtp>"
        f"<enableAuthorization>true</enableAuthorization><enableSSL>false</enableSSL>{security}"
        "<addressingFormatType>ipaddress</addressingFormatType><hostName></hostName>"
        f"<ipAddress>127.0.0.1</ipAddress><portNo>{port}</portNo>"
        f"<accountName>{MAIL_USER}</accountName>{secret}"
        f"<verifyCertificate>false</verifyCertificate>{extra_smtp}</smtp></sender>"
        f"<receiverList>{slots}</receiverList>"
        "<attachment><snapshot><enabled>true</enabled><interval>1</interval></snapshot>"
        "</attachment></mailing>"
    )
    return f"<mailingList>{mailing}</mailingList>" if root == "mailingList" else mailing


def ftp_xml(port: int, *, password: str | None = FTP_PASSWORD, path: str | None = None,
            extra: str = "") -> str:  # fmt: skip
    secret = f"<password>{password}</password>" if password is not None else ""
    upload_path = path or (
        "<uploadPath><pathDepth>2</pathDepth><topDirNameRule>customize</topDirNameRule>"
        "<topDirName>alarms/lobby</topDirName><subDirNameRule>time_date</subDirNameRule>"
        "<subDirName></subDirName><threeDirNameRule>none</threeDirNameRule></uploadPath>"
    )
    return (
        "<FTPNotificationList><FTPNotification><id>1</id><enabled>true</enabled>"
        "<useSSL>false</useSSL><addressingFormatType>hostname</addressingFormatType>"
        f"<hostName>localhost</hostName><ipAddress>0.0.0.0</ipAddress><portNo>{port}</portNo>"
        f"<userName>{FTP_USER}</userName>{secret}<annoyftp>false</annoyftp>"
        f"<uploadPicture>true</uploadPicture>{upload_path}{extra}"
        "<picNameRuleType>default</picNameRuleType></FTPNotification></FTPNotificationList>"
    )


def host_xml(port: int, *, host_id: int | None = 1, password: str | None = HOST_PASSWORD,
             extra: str = "", method: str = "MD5digest") -> str:  # fmt: skip
    ident = f"<id>{host_id}</id>" if host_id is not None else ""
    secret = f"<password>{password}</password>" if password is not None else ""
    return (
        f"<HttpHostNotification>{ident}<url>/alarm/in</url><protocolType>HTTP</protocolType>"
        "<parameterFormatType>XML</parameterFormatType>"
        "<addressingFormatType>ipaddress</addressingFormatType>"
        f"<ipAddress>127.0.0.1</ipAddress><portNo>{port}</portNo><userName>{HOST_USER}</userName>"
        f"{secret}<httpAuthenticationMethod>{method}</httpAuthenticationMethod>{extra}"
        "</HttpHostNotification>"
    )


# -- mailing -----------------------------------------------------------------------------------
def test_mailing_round_trip_keeps_the_password_secret(device: Vigild) -> None:
    accepted(device.put(MAILING, mailing_xml(2525)))
    api = Client(device.url, "admin", ADMIN_PASSWORD, timeout=10)
    mailing = api.System.Network.mailing(method="get")["mailingList"]["mailing"]
    smtp = mailing["sender"]["smtp"]
    assert (smtp["ipAddress"], smtp["portNo"], smtp["accountName"]) == ("127.0.0.1", "2525",
                                                                       MAIL_USER)  # fmt: skip
    assert (smtp["enableSSL"], smtp["enableTLS"], smtp["enableAuthorization"]) == (
        "false", "true", "true",
    )  # fmt: skip
    receivers = mailing["receiverList"]["receiver"]
    assert [r["emailAddress"] for r in receivers] == [
        "guard1@example.test", "guard2@example.test", None,  # three slots, the last blank
    ]  # fmt: skip
    assert mailing["attachment"]["snapshot"] == {"enabled": "true", "interval": "1"}
    assert stored_passwords(device) == {"mail": MAIL_PASSWORD}
    everything = device.get(MAILING).text + device.get(f"{MAILING}/1").text
    assert MAIL_PASSWORD not in everything and "password" not in everything
    assert MAIL_PASSWORD not in (device.data_dir / "config.toml").read_text()

    # What a client sends back from a GET (no password) keeps the stored one; so does the
    # `mailing` alone on .../mailing/1, which changes to implicit TLS here.
    text = api.System.Network.mailing(method="get", present="text")
    text = text.replace("<enableSSL>false<", "<enableSSL>true<")
    text = text.replace("<enableTLS>true<", "<enableTLS>false<")
    accepted(device.put(f"{MAILING}/1", text.split("<mailingList", 1)[1].split(">", 1)[1]
                        .rsplit("</mailingList>", 1)[0]))  # fmt: skip
    smtp = api.System.Network.mailing(method="get")["mailingList"]["mailing"]["sender"]["smtp"]
    assert (smtp["enableSSL"], smtp["enableTLS"]) == ("true", "false")
    assert stored_passwords(device) == {"mail": MAIL_PASSWORD}
    assert 'security = "SSL"' in (device.data_dir / "config.toml").read_text()


def test_the_test_mail_reaches_a_real_server(device: Vigild, tmp_path: Path) -> None:
    with mail_server(tmp_path, "STARTTLS") as server:
        # Unsaved settings with their password: tried, not stored.
        accepted(device.post(f"{MAILING}/test", mailing_xml(server.port)))
        (delivery,) = server.deliveries
        assert delivery.message["Subject"] == "Vigil Camera: test mail"
        assert (delivery.tls, delivery.login) == (True, MAIL_USER)
        assert delivery.rcpt_tos == ["guard1@example.test", "guard2@example.test"]
        assert not credentials_file(device).exists()
        assert "127.0.0.1" not in (device.data_dir / "config.toml").read_text()

        message = refused(device.post(f"{MAILING}/test", mailing_xml(server.port,
                          password="Wrong-Password")), "testFailed", 500)  # fmt: skip
        assert message.startswith(f"SMTP 127.0.0.1:{server.port}: 535 ")

        # Without a body: the stored settings and password.
        accepted(device.put(MAILING, mailing_xml(server.port)))
        accepted(device.post(f"{MAILING}/test", b""))
        assert len(server.deliveries) == 2
    message = refused(device.put(f"{MAILING}/test", b""), "testFailed", 500)
    assert f"SMTP 127.0.0.1:{server.port}" in message and "Connect" in message


# -- FTP ---------------------------------------------------------------------------------------
def test_ftp_round_trip_and_test_upload(device: Vigild, tmp_path: Path) -> None:
    with ftp_server(tmp_path) as peer:
        accepted(device.put(FTP, ftp_xml(peer.port)))
        api = Client(device.url, "admin", ADMIN_PASSWORD, timeout=10)
        ftp = api.System.Network.ftp(method="get")["FTPNotificationList"]["FTPNotification"]
        shown = (ftp["hostName"], ftp["portNo"], ftp["userName"])
        assert shown == ("localhost", str(peer.port), FTP_USER)
        assert (ftp["enabled"], ftp["useSSL"], ftp["annoyftp"]) == ("true", "false", "false")
        assert ftp["uploadPath"]["pathDepth"] == "2"
        assert (ftp["uploadPath"]["topDirName"], ftp["uploadPath"]["subDirNameRule"]) == (
            "alarms/lobby", "time_date",
        )  # fmt: skip
        assert "password" not in device.get(FTP).text + device.get(f"{FTP}/1").text
        assert stored_passwords(device) == {"ftp": FTP_PASSWORD}

        accepted(device.post(f"{FTP}/test", b""))
        (uploaded,) = peer.received
        assert uploaded.parent.parent == peer.user_root / "alarms" / "lobby"
        assert uploaded.name.startswith("vigil-test-") and not uploaded.exists()

        wrong = ftp_xml(peer.port, password="Wrong-Password")
        message = refused(device.post(f"{FTP}/test", wrong), "testFailed", 500)
        assert message.startswith(f"FTP localhost:{peer.port}: 530 ")
        assert stored_passwords(device) == {"ftp": FTP_PASSWORD}  # a test stores nothing

        # A PUT of the FTPNotification alone, without a password, keeps the stored one.
        alone = ftp_xml(peer.port, password=None, path="<uploadPath><pathDepth>0</pathDepth>"
                        "</uploadPath>").split("<FTPNotificationList>")[1]  # fmt: skip
        accepted(device.put(f"{FTP}/1", alone.replace("</FTPNotificationList>", "")))
        accepted(device.put(f"{FTP}/test", b""))
        assert len(peer.received) == 2 and peer.received[1].parent == peer.user_root


# -- HTTP hosts --------------------------------------------------------------------------------
def test_http_hosts_add_change_delete_and_test(device: Vigild) -> None:
    server = AlarmServer("digest", algorithm="MD5")
    try:
        reply = accepted(device.post(HOSTS, host_xml(server.port, host_id=None)))
        assert reply.findtext(f"{NS}id") == "1"
        accepted(device.put(f"{HOSTS}/3", host_xml(server.port, host_id=3, password="Other-1")))
        listed = xml(device.get(HOSTS)).findall(f"{NS}HttpHostNotification")
        assert [h.findtext(f"{NS}id") for h in listed] == ["1", "3"]
        assert listed[0].findtext(f"{NS}httpAuthenticationMethod") == "MD5digest"
        assert "password" not in device.get(HOSTS).text + device.get(f"{HOSTS}/3").text
        assert stored_passwords(device) == {"http_host.1": HOST_PASSWORD, "http_host.3": "Other-1"}

        accepted(device.post(f"{HOSTS}/1/test", b""))
        (post,) = server.wait_for_posts(1)
        alert = parse_alert(post.body)  # the device's EventNotificationAlert: a heartbeat
        assert (alert["eventType"], alert["eventState"]) == ("videoloss", "inactive")
        assert post.content_type == "application/xml" and post.path == "/alarm/in"
        message = refused(device.post(f"{HOSTS}/3/test", b""), "testFailed", 500)
        assert message == f"http://127.0.0.1:{server.port}/alarm/in: HTTP 401 Unauthorized"
        # An unsaved host with the right password passes.
        accepted(device.post(f"{HOSTS}/3/test", host_xml(server.port, host_id=3)))
        assert len(server.wait_for_posts(2)) == 2

        accepted(delete(device, f"{HOSTS}/1"))
        assert stored_passwords(device) == {"http_host.3": "Other-1"}
        refused(device.get(f"{HOSTS}/1"), "notSupport", 404)
        # PUT of the list replaces it: host 3 goes, host 2 comes.
        accepted(device.put(HOSTS, f"<HttpHostNotificationList>{host_xml(server.port, host_id=2)}"
                                   "</HttpHostNotificationList>"))  # fmt: skip
        listed = xml(device.get(HOSTS)).findall(f"{NS}HttpHostNotification")
        assert [h.findtext(f"{NS}id") for h in listed] == ["2"]
        assert stored_passwords(device) == {"http_host.2": HOST_PASSWORD}
    finally:
        server.close()


# -- bad input ---------------------------------------------------------------------------------
BAD_MAILINGS = [
    (mailing_xml(25, receivers=4), "badParameters", "at most 3 receivers"),
    (mailing_xml(0), "badParameters", "<portNo>"),
    (mailing_xml(70000), "badParameters", "<portNo>"),
    (mailing_xml(25).replace("127.0.0.1", "300.1.2.3"), "badParameters", "not an IP address"),
    (
        mailing_xml(25)
        .replace("<addressingFormatType>ipaddress", "<addressingFormatType>hostname")
        .replace("<hostName></hostName>", "<hostName>bad_host!</hostName>"),
        "badParameters",
        "not a host name",
    ),
    (mailing_xml(25, extra_smtp="<smtpLevel>3</smtpLevel>"), "badXmlContent", "smtpLevel"),
    (
        mailing_xml(25).replace("guard1@example.test", "not an address"),
        "badParameters",
        "receiverList",
    ),
    (mailing_xml(25).replace("<interval>1<", "<interval>11<"), "badParameters", "interval"),
    (mailing_xml(25).replace("<id>1</id><sender>", "<id>2</id><sender>"), "badParameters", "<id>"),
    (mailing_xml(25, password="two&#10;lines"), "badParameters", "<password>"),
    ("<mailingList><mailing><id>1</id>", "badXmlFormat", ""),
]
BAD_FTPS = [
    (ftp_xml(21, extra="<uploadProtocolType>SFTP</uploadProtocolType>"), "SFTP"),
    (ftp_xml(21, path="<uploadPath><pathDepth>3</pathDepth></uploadPath>"), "pathDepth"),
    (
        ftp_xml(
            21,
            path="<uploadPath><pathDepth>1</pathDepth><topDirNameRule>devName"
            "</topDirNameRule></uploadPath>",
        ),
        "devName",
    ),
    (ftp_xml(21, extra="<uploadVideoClip>true</uploadVideoClip>"), "uploadVideoClip"),
    (ftp_xml(65536), "<portNo>"),
    (ftp_xml(21).replace("<hostName>localhost", "<hostName>-bad-"), "not a host name"),
]
BAD_HOSTS = [
    (host_xml(80, extra="<parameterFormatType>JSON</parameterFormatType>"), "badXmlContent"),
    (
        host_xml(80).replace("<parameterFormatType>XML", "<parameterFormatType>JSON"),
        "badParameters",
    ),
    (host_xml(80, method="NTLM"), "badParameters"),
    (host_xml(0), "badParameters"),
    (host_xml(80).replace("<url>/alarm/in", "<url>no-slash"), "badParameters"),
    (host_xml(80).replace("127.0.0.1", "1.2.3"), "badParameters"),
    (host_xml(80, host_id=2), "badParameters"),  # PUT to /1 with id 2
    (host_xml(80, extra="<SubscribeEvent/>"), "badXmlContent"),
]


def test_bad_documents_change_nothing(device: Vigild) -> None:
    accepted(device.put(MAILING, mailing_xml(25)))
    accepted(device.put(FTP, ftp_xml(21)))
    accepted(device.put(f"{HOSTS}/1", host_xml(80)))
    config = device.data_dir / "config.toml"
    saved = config.read_bytes(), credentials_file(device).read_bytes()
    for body, sub_status, words in BAD_MAILINGS:
        for path in (MAILING, f"{MAILING}/test"):
            assert words in refused(device.put(path, body), sub_status), body
    for body, words in BAD_FTPS:
        assert words in refused(device.put(FTP, body)), body
    for body, sub_status in BAD_HOSTS:
        refused(device.put(f"{HOSTS}/1", body), sub_status)
    refused(device.put(f"{HOSTS}/5", host_xml(80, host_id=5)), "notSupport", 404)
    for _ in (2, 3, 4):
        accepted(device.post(HOSTS, host_xml(80, host_id=None, password=None)))
    assert "at most 4" in refused(device.post(HOSTS, host_xml(80, host_id=None)))
    for host_id in (2, 3, 4):
        accepted(delete(device, f"{HOSTS}/{host_id}"))
    refused(device.get(f"{MAILING}/2"), "notSupport", 404)
    refused(device.put(f"{FTP}/2", ftp_xml(21)), "notSupport", 404)
    assert (config.read_bytes(), credentials_file(device).read_bytes()) == saved


def test_changes_and_tests_need_the_parameter_permission(device: Vigild) -> None:
    accepted(add_user(device, "operator"))  # an Operator lacks parameterConfig
    operator = device.session("operator", "Oper-Pass-77")
    for method, path in (("put", MAILING), ("post", f"{FTP}/test"), ("delete", f"{HOSTS}/1")):
        reply = operator.request(method, f"{device.url}{path}", data=b"", timeout=10)
        refused(reply, "noPermission", 403)


# -- the whole chain -----------------------------------------------------------------------------
