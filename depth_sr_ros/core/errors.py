"""Errors of bad input: one unusable frame, or a run that cannot start.

`FrameError` makes one frame unusable without stopping the stream. It carries a short `reason`
slug ("unsupported_encoding", "size_mismatch", "truncated_data", "all_invalid_depth",
"missing_camera_info", ...). The node and replay count skips by this slug and log the message,
throttled; they never crash on one bad frame.

`UsageError` is a user's mistake that stops a whole run before it starts: a bad flag value, a
missing or unreadable file, a file of the wrong format, an unknown name. Its text names the flag
or file and says what to do. `depth-sr` prints it as one line and exits with status 2; any other
exception is a bug and keeps its traceback (status 1). Errors of the same kind raised by
library code (`BagError`, `WeightsError`) derive from it.
"""

from __future__ import annotations


class FrameError(ValueError):
    """A frame cannot be processed; `reason` is the counting key, the text says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UsageError(Exception):
    """A user's mistake (flag, file, format, name): the text names it and says what to do."""
