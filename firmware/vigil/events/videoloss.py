"""Video loss (`videoloss`): no picture from the channel's source for `timeout_s` (3 s default).

Method: the detection thread notes when each frame arrives (the channel's tap reports the
frames' times even when no pixel detector wants their pixels) and looks at the silence on a
timer of its own, independent of frames, 4 times a second. Video loss is raised once the
silence reaches the timeout and ends with the first frame again. A channel's source that is
lost and reopened (`VideoChannel`'s back-off) is silent all that time, so it is one event.

No pixels are looked at: this costs nothing beyond the timer, and needs no numpy.
"""

from __future__ import annotations

from vigil.config.events import ChannelDetection


class VideoLossDetector:
    event = "videoloss"

    def update(self, silent_s: float, detection: ChannelDetection) -> bool:
        """True while the channel has been silent for its timeout (and the detector is on)."""
        settings = detection.video_loss
        return settings.enabled and silent_s >= settings.timeout_s
