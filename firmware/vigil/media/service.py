"""The media service: channel 1's capture and encoders, a StreamHub per stream, the RTSP server.

The RTSP server also plays recordings back when given `playback_auth` (the `playBack`
permission) and, in `recordings`, where the card's footage is (set once recording runs).

It follows the configuration live: a stream whose settings change has its encoder rebuilt at
the next frame (clients keep their session); a stream whose codec changes gets a new packetizer,
which ends the sessions that were described with the old codec; an RTSP port change rebinds;
image settings go to the sensor's controls (`vigil.media.isp`) while it streams.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from vigil.api.context import ClientStatus, StreamStatus
from vigil.board.description import BoardDescription
from vigil.config.image import ImageSettings
from vigil.config.model import PortSettings, StreamSettings, TimeSettings
from vigil.config.store import ConfigStore
from vigil.media.channel import VideoChannel
from vigil.media.frames import AccessUnit
from vigil.media.hub import StreamHub
from vigil.media.isp import Capabilities, Isp, V4L2Controls
from vigil.media.rtp import make_packetizer
from vigil.media.rtsp.auth import RtspAuth
from vigil.media.rtsp.playback import Recordings
from vigil.media.rtsp.server import RtspServer
from vigil.media.source import SimSensor, make_source
from vigil.record.index import RecordingIndex

if TYPE_CHECKING:
    from vigil.media.osd import GlyphAtlas

log = logging.getLogger(__name__)
LOCAL_CHANNEL = 1


class MediaService:
    def __init__(
        self,
        board: BoardDescription,
        store: ConfigStore,
        *,
        bind: str,
        rtsp_auth: RtspAuth,
        allow: Callable[[str], bool],
        playback_auth: RtspAuth | None = None,
    ) -> None:
        self.board, self.store, self.bind = board, store, bind
        self._auth, self._allow = rtsp_auth, allow
        self._playback_auth = playback_auth
        self.recordings: Recordings | None = None  # the daemon sets it when recording starts
        self.hubs: dict[int, StreamHub] = {}
        self.source = make_source(board.sensor)
        self._controls = (
            self.source if isinstance(self.source, SimSensor) else V4L2Controls(board.sensor.device)
        )
        self.isp = Isp(board.sensor.controls, self._controls)
        self.channel: VideoChannel | None = None
        self.rtsp: RtspServer | None = None
        self._atlas: GlyphAtlas | None = None  # the OSD's font, rendered once when first needed

    def _local_streams(self) -> list[StreamSettings]:
        return [s for s in self.store.current.streams if s.id // 100 == LOCAL_CHANNEL]

    async def start(self) -> None:
        streams = self._local_streams()
        self.hubs = {s.id: StreamHub(s.id, make_packetizer(s.codec)) for s in streams}
        self.channel = VideoChannel(
            LOCAL_CHANNEL,
            self.source,
            self._publish,
            asyncio.get_running_loop(),
            self.board.encoder.hardware_h264,
        )
        self.channel.configure(streams)
        self._apply_overlay()
        self._apply_isp()
        await self.channel.start()
        self.rtsp = RtspServer(
            hubs=self._hub_if_enabled,
            auth=self._auth,
            settings=lambda: self.store.current.rtsp,
            bind=self.bind,
            port=self.store.current.ports.rtsp,
            allow=self._allow,
            recordings=self._recordings,
            playback_auth=self._playback_auth,
        )
        await self.rtsp.start()

    async def stop(self) -> None:
        if self.rtsp is not None:
            await self.rtsp.stop()
        if self.channel is not None:
            await self.channel.stop()
        if isinstance(self._controls, V4L2Controls):
            self._controls.close()

    def set_scene(self, changes: object) -> None:
        """What the simulated sensor sees (the simulated board's control part "scene"; keys in
        `vigil.media.source`). ValueError for a bad request or a real sensor."""
        if not isinstance(self.source, SimSensor):
            raise ValueError("the sensor is not simulated")
        self.source.set_scene(changes)

    def _recordings(self) -> tuple[Path, RecordingIndex] | None:
        return self.recordings() if self.recordings is not None else None

    async def end_playback(self, reason: str) -> None:
        """End every playback (before the card goes, so no file stays open on it)."""
        if self.rtsp is not None:
            await self.rtsp.end_playback(reason)

    def _publish(self, au: AccessUnit) -> None:
        hub = self.hubs.get(au.stream_id)
        if hub is not None:
            hub.publish(au)

    def hub(self, stream_id: int) -> StreamHub | None:
        """The stream's hub while the stream is enabled (what RTSP and the web's live view play)."""
        return self._hub_if_enabled(stream_id)

    def _hub_if_enabled(self, stream_id: int) -> StreamHub | None:
        stream = self.store.current.stream(stream_id)
        return self.hubs.get(stream_id) if stream is not None and stream.enabled else None

    # -- live changes -------------------------------------------------------------------------
    async def apply_streams(self, old: list[StreamSettings], new: list[StreamSettings]) -> None:
        before = {s.id: s for s in old}
        for stream in new:
            previous = before.get(stream.id)
            hub = self.hubs.get(stream.id)
            if hub is not None and previous is not None and previous.codec != stream.codec:
                hub.replace_packetizer(make_packetizer(stream.codec))
                log.info("stream %d now %s; its sessions end", stream.id, stream.codec)
            if hub is not None and previous is not None and not stream.enabled:
                for subscription in hub.subscribers:
                    subscription.close()
        if self.channel is not None:
            self.channel.configure(self._local_streams())

    async def apply_image(self, old: ImageSettings, new: ImageSettings) -> None:
        """The `image` section changed: the OSD and privacy masks from the next frame on, and
        the sensor's image settings."""
        self._apply_overlay()
        self._apply_isp()

    def _apply_isp(self) -> None:
        self.isp.apply(self.store.current.image.channel(LOCAL_CHANNEL).isp)

    def image_capabilities(self, channel: int) -> Capabilities | None:
        """The image settings the channel's sensor has; None for a channel without a sensor."""
        return self.isp.capabilities if channel == LOCAL_CHANNEL else None

    def set_monochrome(self, on: bool) -> None:
        """Night mode's black and white picture (on) or colour (off), for the day/night
        service."""
        self.isp.set_monochrome(on)

    async def apply_time(self, old: TimeSettings, new: TimeSettings) -> None:
        """The OSD's date/time is in the device's time zone."""
        if new.time_zone != old.time_zone:
            self._apply_overlay()

    def _apply_overlay(self) -> None:
        if self.channel is None:
            return
        config = self.store.current
        settings = config.image.channel(LOCAL_CHANNEL)
        overlay = None
        if settings.drawn:
            # Imported here: numpy and Pillow are loaded only once something is drawn.
            from vigil.media.osd import Overlay

            overlay = Overlay(settings, config.time.time_zone, atlas=self._atlas)
            self._atlas = overlay.atlas
        self.channel.set_overlay(overlay)
        osd, masks = settings.osd, settings.privacy_mask
        shown = f"on (time zone {config.time.time_zone})" if osd.shown else "off"
        log.info(
            "channel %d: OSD %s, %d privacy mask(s)",
            LOCAL_CHANNEL, shown, len(masks.areas) if masks.shown else 0,
        )  # fmt: skip

    async def apply_ports(self, old: PortSettings, new: PortSettings) -> None:
        if self.rtsp is not None and new.rtsp != old.rtsp:
            await self.rtsp.apply_port(new.rtsp)

    # -- what the API shows -------------------------------------------------------------------
    def stream_status(self) -> list[StreamStatus]:
        result = []
        for stream in self._local_streams():
            hub = self.hubs[stream.id]
            result.append(
                StreamStatus(
                    stream_id=stream.id,
                    enabled=stream.enabled,
                    bitrate_kbps=hub.bitrate_kbps,
                    frame_rate=hub.frame_rate,
                    clients=len(hub.subscribers),
                )
            )
        return result

    def client_status(self) -> list[ClientStatus]:
        if self.rtsp is None:
            return []
        return [
            ClientStatus(
                stream_id=s.stream_id,
                address=s.client,
                user=s.user,
                transport=s.transport,
                started=s.started,
                octets=s.octets,
                skips=s.skips,
            )
            for s in self.rtsp.sessions()
        ]

    async def snapshot(self, channel: int, width: int, height: int, quality: int) -> bytes:
        if channel != LOCAL_CHANNEL or self.channel is None:
            raise LookupError(f"no video channel {channel}")
        return await self.channel.snapshot(width, height, quality)
