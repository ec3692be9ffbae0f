"""Reading a device's alertStream in tests: a thread that splits the multipart stream into
parts, and waits for an alert that matches."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests

from tests.vigild import Vigild

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
STREAM = "/ISAPI/Event/notification/alertStream"
Alert = dict[str, str]


def parse_alert(xml: bytes) -> Alert:
    root = ET.fromstring(xml)
    assert root.tag == f"{NS}EventNotificationAlert", root.tag
    return {child.tag.removeprefix(NS): child.text or "" for child in root}


class AlertReader:
    """The parts of one alertStream, parsed, in a queue; `ended` once the stream closed."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.parts: queue.Queue[Alert] = queue.Queue()
        self.raw: list[bytes] = []  # every part as sent, headers included
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buffer = b""
        try:
            for chunk in self.response.iter_content(chunk_size=None):
                buffer += chunk
                buffer = self._split(buffer)
        except (requests.RequestException, OSError, AttributeError):  # closed under it
            pass
        finally:
            self.ended.set()

    def _split(self, buffer: bytes) -> bytes:
        while True:
            start = buffer.find(b"--boundary\r\n")
            head_end = buffer.find(b"\r\n\r\n", start)
            if start < 0 or head_end < 0:
                return buffer
            headers = buffer[start:head_end].decode().split("\r\n")[1:]
            length = int(
                next(h.split(":")[1] for h in headers if h.lower().startswith("content-length"))
            )
            body_end = head_end + 4 + length
            if len(buffer) < body_end + 2:
                return buffer
            assert buffer[body_end : body_end + 2] == b"\r\n"
            self.raw.append(buffer[start : body_end + 2])
            self.parts.put(parse_alert(buffer[head_end + 4 : body_end]))
            buffer = buffer[body_end + 2 :]

    def wait_for(self, match: Callable[[Alert], bool], timeout: float = 15) -> Alert:
        """The first alert from now on that matches; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                alert = self.parts.get(timeout=left)
            except queue.Empty:
                break
            if match(alert):
                return alert
            seen.append((alert["eventType"], alert["eventState"]))
        raise AssertionError(f"no matching alert in {timeout} s; saw {seen}")

    def close(self) -> None:
        # Shut the socket down first: closing it alone does not wake the reader's recv().
        # urllib3 hands the socket to http.client's response: fp is its socket file.
        with contextlib.suppress(OSError, AttributeError):
            self.response.raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        self.response.close()
        self.ended.wait(5)


def event(event_type: str, state: str = "active") -> Callable[[Alert], bool]:
    return lambda alert: alert["eventType"] == event_type and alert["eventState"] == state


@contextmanager
def alert_stream(device: Vigild) -> Iterator[AlertReader]:
    response = device.session().get(device.url + STREAM, stream=True, timeout=30)
    assert response.status_code == 200, response.text
    reader = AlertReader(response)
    try:
        yield reader
    finally:
        reader.close()
