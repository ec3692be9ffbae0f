"""RTP: payload formats (RFC 6184 H.264, RFC 7798 H.265, RFC 2435 JPEG) and RTCP."""
