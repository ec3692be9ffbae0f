"""The HTTP and HTTPS listeners: IP filtering at accept time, live rebinding on port changes."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

from aiohttp import web

from vigil.config.model import PortSettings
from vigil.security.ipfilter import IpFilter

log = logging.getLogger(__name__)


class _GatedProtocol(asyncio.Protocol):
    """Wraps aiohttp's per-connection handler; a filtered peer is dropped before any parsing."""

    def __init__(self, inner: asyncio.Protocol, ipfilter: IpFilter) -> None:
        self._inner = inner
        self._filter = ipfilter
        self._open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        if peer and not self._filter.allows(str(peer[0])):
            log.info("IP filter refused a connection from %s", peer[0])
            transport.abort()
            return
        self._open = True
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._open:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._open else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._open:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GatedSite(web.BaseSite):
    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        ipfilter: IpFilter,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host, self._port, self._filter = host, port, ipfilter

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        handler_factory: Any = self._runner.server
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _GatedProtocol(handler_factory(), self._filter),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=True,
        )


class HttpService:
    def __init__(
        self,
        app: web.Application,
        bind: str,
        ports: PortSettings,
        ipfilter: IpFilter,
        tls: ssl.SSLContext,
    ) -> None:
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        self._bind, self._ports, self._filter, self._tls = bind, ports, ipfilter, tls
        self._sites: dict[str, GatedSite] = {}

    async def start(self) -> None:
        await self._runner.setup()
        await self._open("http", self._ports.http, None)
        if self._ports.https_enabled:
            await self._open("https", self._ports.https, self._tls)

    async def stop(self) -> None:
        await self._runner.cleanup()
        self._sites.clear()

    async def _open(self, scheme: str, port: int, tls: ssl.SSLContext | None) -> None:
        site = GatedSite(self._runner, self._bind, port, self._filter, tls)
        await site.start()
        self._sites[scheme] = site
        log.info("%s listening on %s", scheme.upper(), site.name)

    async def _close(self, scheme: str) -> None:
        site = self._sites.pop(scheme, None)
        if site is not None:
            await site.stop()

    async def apply(self, old: PortSettings, new: PortSettings) -> None:
        """Rebind what changed: the new listener opens before the old one closes."""
        self._ports = new
        if new.http != old.http:
            previous = self._sites["http"]
            try:
                await self._open("http", new.http, None)
            except OSError:
                self._sites["http"] = previous  # keep serving where we were
                raise
            await previous.stop()
        https_was = old.https if old.https_enabled else None
        https_now = new.https if new.https_enabled else None
        if https_now != https_was:
            await self._close("https")
            if https_now is not None:
                await self._open("https", https_now, self._tls)

    def check_ports(self, new: PortSettings) -> None:
        """Raise OSError if a port we would newly listen on is taken."""
        ours = {self._ports.http, self._ports.https if self._ports.https_enabled else None}
        wanted = [new.http] + ([new.https] if new.https_enabled else [])
        for port in wanted:
            if port in ours:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((self._bind, port))

    def urls(self, host: str) -> list[str]:
        urls = [f"http://{host}:{self._ports.http}/"]
        if self._ports.https_enabled:
            urls.append(f"https://{host}:{self._ports.https}/")
        return urls
