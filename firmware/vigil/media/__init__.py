"""The media plane: sources, encoders, StreamHub, RTP and RTSP."""
