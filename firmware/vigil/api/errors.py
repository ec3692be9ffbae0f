"""ISAPI errors: an exception that carries the ResponseStatus codes and the HTTP status."""

from __future__ import annotations

STATUS_STRINGS = {
    1: "OK",
    2: "Device Busy",
    3: "Device Error",
    4: "Invalid Operation",
    5: "Invalid XML Format",
    6: "Invalid XML Content",
    7: "Reboot Required",
}


class IsapiError(Exception):
    def __init__(
        self,
        http_status: int,
        status_code: int,
        sub_status: str,
        message: str = "",
        extra: dict[str, str] | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message or sub_status)
        self.http_status = http_status
        self.status_code = status_code
        self.sub_status = sub_status
        self.message = message
        self.extra = extra or {}
        self.headers = headers or []


def bad_xml_format(message: str) -> IsapiError:
    return IsapiError(400, 5, "badXmlFormat", message)


def bad_xml_content(message: str) -> IsapiError:
    return IsapiError(400, 6, "badXmlContent", message)


def bad_parameters(message: str) -> IsapiError:
    return IsapiError(400, 6, "badParameters", message)


def invalid_operation(message: str, sub_status: str = "invalidOperation") -> IsapiError:
    return IsapiError(403, 4, sub_status, message)


def not_found(message: str = "no such resource") -> IsapiError:
    return IsapiError(404, 4, "notSupport", message)


def device_error(message: str) -> IsapiError:
    return IsapiError(500, 3, "deviceError", message)
