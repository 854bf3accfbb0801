"""Errors that make one frame unusable without stopping the stream.

Every such error carries a short `reason` slug ("unsupported_encoding", "size_mismatch",
"truncated_data", "all_invalid_depth", "missing_camera_info", ...). The node and replay count
skips by this slug and log the message, throttled; they never crash on one bad frame.
"""

from __future__ import annotations


class FrameError(ValueError):
    """A frame cannot be processed; `reason` is the counting key, the text says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
