"""What ISAPI handlers may use: the services `daemon.py` hands to the application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from vigil.board.clock import Clock
    from vigil.board.description import BoardDescription
    from vigil.board.network import NetworkDriver
    from vigil.config.store import ConfigStore
    from vigil.security.accounts import Accounts
    from vigil.security.devicekey import DeviceKey
    from vigil.security.digest import DigestAuth
    from vigil.security.lockout import Lockout
    from vigil.system.devicelog import DeviceLog
    from vigil.system.identity import DeviceIdentity


@dataclass
class SystemControl:
    """Actions on the whole device that only the daemon can carry out."""

    reboot: Callable[[], Awaitable[None]]
    factory_reset: Callable[[str], Awaitable[None]]  # "basic" | "full"
    check_ports: Callable[[object], Awaitable[None]]  # raises OSError if a port cannot be bound
    sync_time: Callable[[], Awaitable[float]]


@dataclass
class ApiContext:
    board: BoardDescription
    identity: DeviceIdentity
    store: ConfigStore
    accounts: Accounts
    digest: DigestAuth
    lockout: Lockout
    devicelog: DeviceLog
    clock: Clock
    network: NetworkDriver
    device_key: DeviceKey
    system: SystemControl


CONTEXT = web.AppKey("vigil_context", ApiContext)


def context(request: web.Request) -> ApiContext:
    return request.app[CONTEXT]
