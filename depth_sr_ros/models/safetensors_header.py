"""A safetensors file's header, read without torch and without reading its tensors.

The format: an 8-byte little-endian header length N, N bytes of JSON, then the tensor bytes. The
JSON maps each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets into
the bytes after the header) and may hold `"__metadata__"`. `tensor_shapes` checks every entry
against the file's size, so that the shapes it returns bound what loading the file can allocate:
a weights card whose config asks for more than that is refused before any network is built.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from depth_sr_ros.models.card import CARD_SUFFIX, WEIGHTS_SUFFIX, WeightsError

MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8,
}

Shapes = dict[str, tuple[int, ...]]
"""Tensor name -> shape."""


def check_safetensors_header(path: Path) -> None:
    """WeightsError unless `path` starts like a safetensors file (an 8-byte little-endian header
    length, then that many bytes of JSON). Checked before the card, so that a pickled
    `.pt`/`.pth` checkpoint or another file is named for what it is."""
    size = path.stat().st_size
    with open(path, "rb") as stream:
        head = stream.read(9)
    length = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if len(head) < 9 or not 2 <= length <= size - 8 or head[8:9] != b"{":
        kind = "a zip archive (a torch.save checkpoint?)" if head[:2] == b"PK" else (
            "a pickle (a torch.save checkpoint?)" if head[:1] == b"\x80" else f"{size} bytes of something else")
        raise WeightsError(
            f"{path} is not a safetensors file ({kind}). Weights are loaded from *{WEIGHTS_SUFFIX} files with "
            f"a {CARD_SUFFIX} card only, never unpickled: convert a checkpoint with save_weights "
            "(depth_sr_ros.models.weights)"
        )


def corrupt(path: Path, detail: str) -> WeightsError:
    """The error for a weights file whose bytes do not hold what its header says."""
    return WeightsError(f"{path} is truncated or corrupt ({path.stat().st_size} bytes): {detail}. Copy the file again")


def tensor_shapes(path: Path) -> Shapes:
    """The shape of every tensor `path` holds, from its header; WeightsError for a header that is
    not one or that claims more bytes than the file has."""
    check_safetensors_header(path)
    size = path.stat().st_size
    with open(path, "rb") as stream:
        length = int.from_bytes(stream.read(8), "little")
        if length > MAX_HEADER_BYTES:
            raise corrupt(path, f"a {length}-byte header (the format allows {MAX_HEADER_BYTES})")
        text = stream.read(length)
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise corrupt(path, f"its header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise corrupt(path, "its header is not a JSON object")
    data_bytes = size - 8 - length
    shapes: Shapes = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shapes[name] = _entry_shape(path, name, entry, data_bytes)
    return shapes


def _entry_shape(path: Path, name: str, entry: object, data_bytes: int) -> tuple[int, ...]:
    """The shape of one header entry after checking its dtype, shape and offsets against the data."""
    if not isinstance(entry, dict):
        raise corrupt(path, f"tensor {name!r} has no header entry")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise corrupt(path, f"tensor {name!r} has dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise corrupt(path, f"tensor {name!r} has shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(n, int) for n in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_bytes):
        raise corrupt(path, f"tensor {name!r} has data offsets {offsets!r} in {data_bytes} bytes of data")
    if math.prod(shape) * DTYPE_BYTES[dtype] != offsets[1] - offsets[0]:
        raise corrupt(path, f"tensor {name!r} of shape {shape} {dtype} has {offsets[1] - offsets[0]} bytes")
    return tuple(shape)
