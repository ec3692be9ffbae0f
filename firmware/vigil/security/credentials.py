"""Passwords the device uses to log in elsewhere: the SMTP, FTP and HTTP-host accounts.

Unlike the users' passwords (kept as digest verifiers by `passwords.PasswordVault`) these must
be kept in clear text, since the device has to send them; so they live apart from the
configuration, in `<data-dir>/secrets/credentials.json` (mode 0600, in the 0700 secrets
folder), replaced atomically on every change. No ISAPI GET returns them: as on Hikvision
devices, a GET leaves the password out and a PUT without one keeps the stored one.

Names say whose password it is: "mail", "ftp", "http_host.1" ... "http_host.4". An unset
name reads as "". A file that cannot be read is logged and treated as empty (the passwords
must then be set again), so a damaged secret never stops the device from starting.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path

from vigil.config.atomic import write_atomic

log = logging.getLogger(__name__)

NAME = re.compile(r"[a-z][a-z_]{0,31}(\.[1-9][0-9]{0,2})?", re.ASCII)
MAX_LENGTH = 128  # longer than any account password a mail, FTP or alarm server takes


def check_secret(value: str) -> None:
    """ValueError unless `value` can be stored and sent (a password is one line)."""
    if len(value) > MAX_LENGTH or any(c in value for c in "\x00\r\n"):
        raise ValueError(f"a password has at most {MAX_LENGTH} characters and no line breaks")


def http_host_name(host_id: int) -> str:
    """The credential name of HTTP host `host_id`."""
    return f"http_host.{host_id}"


class Credentials:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, str] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.error("credentials %s unreadable (%s); mail, FTP and HTTP host passwords "
                      "must be set again", self.path, exc)  # fmt: skip
            return
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            log.error("credentials %s malformed; the passwords must be set again", self.path)
            return
        self._entries = data

    def get(self, name: str) -> str:
        return self._entries.get(name, "")

    def set(self, name: str, value: str) -> None:
        """Store `value` under `name`; "" forgets it. ValueError for a bad name or value."""
        if not NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a credential name")
        check_secret(value)
        with self._lock:
            entries = dict(self._entries)
            if value:
                entries[name] = value
            else:
                entries.pop(name, None)
            if entries != self._entries:
                self._save(entries)

    def remove(self, *names: str) -> None:
        with self._lock:
            entries = {k: v for k, v in self._entries.items() if k not in names}
            if entries != self._entries:
                self._save(entries)

    def wipe(self) -> None:
        """Forget every password (full factory reset)."""
        with self._lock:
            self._save({})

    def _save(self, entries: dict[str, str]) -> None:
        write_atomic(self.path, json.dumps(entries, indent=1).encode(), mode=0o600)
        self._entries = entries
