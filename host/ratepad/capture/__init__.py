"""Captures of keypad links: pcapng files, the tap that records any transport and ``replay://``
(``capture.replay``), which plays one back as a keypad."""

from __future__ import annotations

from .pcapng import CaptureError, CaptureWriter, Chunk, Direction, iter_capture, read_capture

__all__ = ["CaptureError", "CaptureWriter", "Chunk", "Direction", "iter_capture", "read_capture"]
