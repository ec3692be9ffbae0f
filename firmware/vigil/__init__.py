"""Vigil: an open firmware userland for Linux IP cameras and NVRs."""

__version__ = "0.1.0"
