"""Activation and user accounts: the one place that changes who may log in.

HTTP (`/ISAPI/System/activate`, `/ISAPI/Security/users`) and SADP (`activate`) both come here,
so the password rule, the 32-user limit and the admin's special standing hold on every path.
Users and their levels live in the configuration; their verifiers live in the vault.
"""

from __future__ import annotations

import dataclasses
import logging

from vigil.config.model import ADMIN_NAME, LEVEL_PERMISSIONS, MAX_USERS, Config, User
from vigil.config.schema import ConfigError
from vigil.config.store import ConfigStore
from vigil.security.passwords import PasswordVault, check_password_rule

log = logging.getLogger(__name__)


class AccountError(Exception):
    """A refused account change; `reason` is a short ISAPI-style sub-status word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Accounts:
    def __init__(self, store: ConfigStore, vault: PasswordVault) -> None:
        self.store = store
        self.vault = vault

    @property
    def activated(self) -> bool:
        return self.vault.has(ADMIN_NAME)

    def user(self, name: str) -> User | None:
        return self.store.current.user(name)

    def verify(self, name: str, password: str) -> bool:
        return self.user(name) is not None and self.vault.verify(name, password)

    async def activate(self, password: str) -> None:
        if self.activated:
            raise AccountError("alreadyActivated", "the device is already activated")
        _check_rule(ADMIN_NAME, password)
        self.vault.set(ADMIN_NAME, password)
        log.info("device activated")

    async def add(
        self, name: str, level: str, password: str, permissions: list[str] | None
    ) -> User:
        config = self.store.current
        if config.user(name) is not None:
            raise AccountError("userNameExists", f"user {name!r} exists")
        if len(config.users) >= MAX_USERS:
            raise AccountError("userNumExceeded", f"at most {MAX_USERS} users")
        if level == "Administrator":
            raise AccountError("badParameters", "only the built-in admin is an Administrator")
        _check_rule(name, password)
        free_id = min(set(range(1, MAX_USERS + 1)) - {u.id for u in config.users})
        chosen = list(LEVEL_PERMISSIONS.get(level, ())) if permissions is None else permissions
        user = User(id=free_id, name=name, level=level, permissions=chosen)
        await self._save(dataclasses.replace(config, users=[*config.users, user]))
        self.vault.set(name, password)
        return user

    async def modify(
        self,
        user_id: int,
        *,
        level: str | None = None,
        permissions: list[str] | None = None,
        password: str | None = None,
    ) -> User:
        config = self.store.current
        current = next((u for u in config.users if u.id == user_id), None)
        if current is None:
            raise AccountError("userNotExist", f"no user {user_id}")
        if password is not None:
            _check_rule(current.name, password)
        changed = dataclasses.replace(
            current,
            level=current.level if level is None else level,
            permissions=current.permissions if permissions is None else permissions,
        )
        users = [changed if u.id == user_id else u for u in config.users]
        await self._save(dataclasses.replace(config, users=users))
        if password is not None:
            self.vault.set(current.name, password)
        return changed

    async def delete(self, user_id: int) -> None:
        config = self.store.current
        victim = next((u for u in config.users if u.id == user_id), None)
        if victim is None:
            raise AccountError("userNotExist", f"no user {user_id}")
        if victim.name == ADMIN_NAME:
            raise AccountError("invalidOperation", "the admin user cannot be deleted")
        await self._save(
            dataclasses.replace(config, users=[u for u in config.users if u != victim])
        )
        self.vault.remove(victim.name)

    async def _save(self, config: Config) -> None:
        try:
            await self.store.replace(config)
        except ConfigError as exc:
            raise AccountError("badParameters", str(exc)) from None


def _check_rule(name: str, password: str) -> None:
    try:
        check_password_rule(name, password)
    except ValueError as exc:
        raise AccountError("weakPassword", str(exc)) from None
