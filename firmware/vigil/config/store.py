"""The configuration store: load with fallback, validated atomic updates, live subscriptions.

`config.toml` holds the whole model. A write goes through `write_atomic` and keeps the replaced
file as `config.toml.last-good`; at start the store reads the current file and, if it is
unreadable or invalid, the last-good one, and only then the defaults, saying so in the log.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import tomli_w

from vigil.config.atomic import last_good_path, remove_stale_temporaries, write_atomic
from vigil.config.model import Config
from vigil.config.schema import ConfigError, from_dict, to_plain, validate

log = logging.getLogger(__name__)

Listener = Callable[[Any, Any], Awaitable[None] | None]


def parse_config(data: bytes) -> Config:
    """TOML bytes -> validated Config (raises ConfigError or tomllib.TOMLDecodeError)."""
    return from_dict(Config, tomllib.loads(data.decode("utf-8")))


def dump_config(config: Config) -> bytes:
    return tomli_w.dumps(to_plain(config)).encode("utf-8")


class ConfigStore:
    def __init__(self, path: Path, defaults: Config) -> None:
        self.path = path
        self.defaults = defaults
        self._current = defaults
        self._listeners: list[tuple[str, Listener]] = []
        self._lock = asyncio.Lock()

    @property
    def current(self) -> Config:
        return self._current

    def load(self) -> Config:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.path.parent)
        for candidate in (self.path, last_good_path(self.path)):
            config = self._read(candidate)
            if config is not None:
                if candidate != self.path:
                    log.warning("config %s unreadable; using the last good copy", self.path)
                self._current = config
                return config
        log.info("no configuration at %s; starting from defaults", self.path)
        self._current = self.defaults
        write_atomic(self.path, dump_config(self.defaults))
        return self._current

    @staticmethod
    def _read(path: Path) -> Config | None:
        try:
            return parse_config(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ConfigError) as exc:
            log.error("config %s is broken: %s", path, exc)
            return None

    def subscribe(self, section: str, listener: Listener) -> None:
        """Call `listener(old_section, new_section)` whenever that top-level section changes."""
        self._listeners.append((section, listener))

    async def replace(self, new: Config) -> Config:
        """Validate, persist atomically, then notify the subscribers of changed sections."""
        validate(new)
        async with self._lock:
            old = self._current
            if new == old:
                return old
            await asyncio.to_thread(write_atomic, self.path, dump_config(new), keep_last_good=True)
            self._current = new
            await self._notify(old, new)
        return new

    async def update(self, change: Callable[[Config], Config]) -> Config:
        """Apply `change` to the current config; a ConfigError from it changes nothing."""
        return await self.replace(change(self._current))

    async def _notify(self, old: Config, new: Config) -> None:
        for section, listener in self._listeners:
            before, after = getattr(old, section), getattr(new, section)
            if before == after:
                continue
            try:
                result = listener(before, after)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                # A service that fails to apply a change must not stop the others from
                # applying theirs; it logs and keeps its previous state.
                log.exception("applying a change to %s failed", section)
