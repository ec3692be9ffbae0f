"""PTZ over RS-485 (SPEC §6): the Pelco-D and Pelco-P codecs (`commands`, `pelco_d`, `pelco_p`), the
line (`line`), the dome's mechanics (`position`) and the controller (`controller`, `tours`)."""

from __future__ import annotations

from vigil.ptz import pelco_d, pelco_p
from vigil.ptz.commands import Codec, PelcoError

CODECS: dict[str, Codec] = {codec.name: codec for codec in (pelco_d.CODEC, pelco_p.CODEC)}


def codec(name: str) -> Codec:
    """The codec for "pelco-d" or "pelco-p"."""
    try:
        return CODECS[name]
    except KeyError:
        raise PelcoError(f"unknown PTZ protocol {name!r} (known: {', '.join(CODECS)})") from None
