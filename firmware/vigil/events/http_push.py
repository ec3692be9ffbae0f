"""HTTP push to alarm servers (`Event/notification/httpHosts`): each alert POSTed as its XML.

What was chosen:

- One Action per HTTP host slot (ids 1-4, named "http host N"), made once by
  `http_push_actions`: each reads its host from the settings at every event, so adding,
  changing or removing a host needs no rewiring, and a host that does not answer is retried
  by the ActionRunner on its own without delaying or repeating the posts to the others.
- Both the activation and the end of an event are posted (`trigger.center`): the alarm
  server sees the end too. The body is the caller's `render(event)` (the
  EventNotificationAlert document), `Content-Type: application/xml`.
- Authentication: none, basic (RFC 7617, UTF-8), or digest (aiohttp's
  DigestAuthMiddleware, RFC 7616: MD5 and SHA-256, qop=auth); the password is the stored
  credential `http_host.N`. HTTPS checks the server's certificate unless
  `verify_certificate` is off.
- Any status other than 2xx is a failure (ActionFailed naming the URL and the status); so is
  no answer within `timeout_s` for the whole exchange.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import aiohttp

from vigil.config.events import EventTrigger, HttpHost
from vigil.events.bus import Event
from vigil.events.linkage import ActionFailed
from vigil.security.credentials import Credentials, http_host_name

HTTP_TIMEOUT_S = 10.0
MAX_HOSTS = 4  # HttpHost.id runs 1-4
CONTENT_TYPE = "application/xml"


def host_url(host: HttpHost) -> str:
    scheme = "https" if host.protocol == "HTTPS" else "http"
    address = f"[{host.host}]" if ":" in host.host else host.host
    return f"{scheme}://{address}:{host.port}{host.path}"


def basic_authorization(user: str, password: str) -> str:
    """RFC 7617, UTF-8 (aiohttp.BasicAuth is deprecated for this)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


async def post_alert(host: HttpHost, password: str, body: bytes, timeout_s: float) -> None:
    """POST `body` to `host` once; ActionFailed unless it answers 2xx in time."""
    url = host_url(host)
    headers = {"Content-Type": CONTENT_TYPE}
    session_args: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=timeout_s)}
    if host.auth == "digest":
        session_args["middlewares"] = (aiohttp.DigestAuthMiddleware(host.user, password),)
    elif host.auth == "basic":
        headers["Authorization"] = basic_authorization(host.user, password)
    verify = host.verify_certificate or host.protocol == "HTTP"
    try:
        async with (
            aiohttp.ClientSession(**session_args) as session,
            session.post(url, data=body, headers=headers, ssl=verify) as response,
        ):
            if not 200 <= response.status < 300:
                raise ActionFailed(f"{url}: HTTP {response.status} {response.reason or ''}")
    except TimeoutError:
        raise ActionFailed(f"{url}: no answer within {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise ActionFailed(f"{url}: {exc}") from None


class HttpPushAction:
    """The HTTP push of one host slot: part of a trigger's `center` linkage."""

    def __init__(
        self,
        host_id: int,
        hosts: Callable[[], list[HttpHost]],
        credentials: Credentials,
        render: Callable[[Event], bytes],
        timeout_s: float = HTTP_TIMEOUT_S,
    ) -> None:
        self.host_id = host_id
        self.name = f"http host {host_id}"
        self._hosts = hosts
        self._credentials = credentials
        self._render = render
        self.timeout_s = timeout_s

    def _host(self) -> HttpHost | None:
        host = next((h for h in self._hosts() if h.id == self.host_id), None)
        return host if host is not None and host.host else None

    def wanted(self, trigger: EventTrigger, event: Event) -> bool:
        return trigger.center and self._host() is not None

    async def run(self, event: Event) -> None:
        host = self._host()
        if host is None:  # removed since the event was dispatched
            return
        password = self._credentials.get(http_host_name(host.id))
        await post_alert(host, password, self._render(event), self.timeout_s)


def http_push_actions(
    hosts: Callable[[], list[HttpHost]],
    credentials: Credentials,
    render: Callable[[Event], bytes],
    timeout_s: float = HTTP_TIMEOUT_S,
) -> list[HttpPushAction]:
    """One action per host slot, 1 to MAX_HOSTS."""
    return [
        HttpPushAction(i, hosts, credentials, render, timeout_s) for i in range(1, MAX_HOSTS + 1)
    ]
