"""A tiny, structurally valid MP4 (ISO BMFF) built in code for the simulators.

The file has `ftyp`, a `moov` with one video track (`mvhd`, `trak` → `tkhd`, `mdia` → `mdhd`, `hdlr`, `minf` →
`vmhd`, `dinf`, `stbl`) and an `mdat`. The sample tables are empty: the simulators need a file that parses as
MP4 and has an exact size, not frames anyone will watch. Padding to N bytes goes into `mdat`, so the padded
file is the same valid structure, and it can be streamed as header + zeros without building N bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = ["build_mp4", "iter_boxes", "mp4_parts"]

_UNITY_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
_TIMESCALE = 1000


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _moov(duration_ms: int, width: int, height: int) -> bytes:
    mvhd = _full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIII", 0, 0, _TIMESCALE, duration_ms),
        struct.pack(">IH", 0x00010000, 0x0100), bytes(10), _UNITY_MATRIX, bytes(24),
        struct.pack(">I", 2),
    )  # fmt: skip
    tkhd = _full_box(
        b"tkhd", 0, 0x3,  # enabled | in movie
        struct.pack(">IIII", 0, 0, 1, 0), struct.pack(">I", duration_ms), bytes(8),
        struct.pack(">hhhH", 0, 0, 0, 0), _UNITY_MATRIX, struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, _TIMESCALE, duration_ms, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, 0, struct.pack(">I4s", 0, b"vide"), bytes(12), b"VideoHandler\x00")
    vmhd = _full_box(b"vmhd", 0, 1, bytes(8))
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 0)),
        _full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        _full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        _full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        _full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    minf = _box(b"minf", vmhd, dinf, stbl)
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    return _box(b"moov", mvhd, trak)


def mp4_parts(
    size: int | None = None, *, duration_s: float = 5.0, width: int = 1920, height: int = 1080
) -> tuple[bytes, int]:
    """(header bytes, number of zero bytes that follow). Header ends with the `mdat` box header.

    With `size`, header + zeros is exactly `size` bytes (sizes smaller than the bare file are raised to it).
    """
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"mp41")
    head = ftyp + _moov(round(duration_s * 1000), width, height)
    minimum = len(head) + 8 + 16  # a few bytes of mdat payload so it is never empty
    total = max(size or minimum, minimum)
    padding = total - len(head) - 8
    if 8 + padding > 0xFFFFFFFF:
        raise ValueError("padded MP4 larger than 4 GiB is not supported")
    return head + struct.pack(">I4s", 8 + padding, b"mdat"), padding


def build_mp4(size: int | None = None, *, duration_s: float = 5.0) -> bytes:
    """The whole file in memory (fine for small files and tests)."""
    head, padding = mp4_parts(size, duration_s=duration_s)
    return head + bytes(padding)


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[str, int, int]]:
    """(type, offset, size) of each box in `data[start:end]`; raises ValueError on a broken box."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        if end - pos < 8:
            raise ValueError(f"truncated box header at {pos}")
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size < 8 or pos + size > end:
            raise ValueError(f"bad box size {size} at {pos}")
        yield kind.decode("latin-1"), pos, size
        pos += size
