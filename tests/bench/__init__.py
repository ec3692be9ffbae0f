"""`make bench`: RTSP fan-out figures of Vigil against gst-rtsp-server, measured in one run."""
