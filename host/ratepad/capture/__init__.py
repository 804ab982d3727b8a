"""Captures of keypad links: pcapng files and a tap that records any transport."""

from __future__ import annotations

from .pcapng import CaptureError, CaptureWriter, Chunk, Direction, iter_capture, read_capture

__all__ = ["CaptureError", "CaptureWriter", "Chunk", "Direction", "iter_capture", "read_capture"]
