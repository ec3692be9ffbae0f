"""RTSP 1.0 live streaming: the server, its sessions, and how it asks who may watch."""

from vigil.media.rtsp.auth import AccountsRtspAuth, AuthResult, AuthStatus, RtspAuth
from vigil.media.rtsp.server import RtspServer
from vigil.media.rtsp.session import SessionInfo

__all__ = [
    "AccountsRtspAuth",
    "AuthResult",
    "AuthStatus",
    "RtspAuth",
    "RtspServer",
    "SessionInfo",
]
