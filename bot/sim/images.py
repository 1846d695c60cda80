"""Small real PNG images made in code, for the demo, tests and benchmarks (no image library needed)."""

from __future__ import annotations

import struct
import zlib

__all__ = ["make_png"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def make_png(width: int, height: int, rgb: tuple[int, int, int] = (88, 101, 242)) -> bytes:
    """A valid 8-bit RGB PNG of one colour with a diagonal gradient, so two images are never identical."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        shade = (y * 64) // max(1, height - 1)
        rows.extend(bytes(((rgb[0] + shade) % 256, rgb[1], (rgb[2] - shade) % 256)) * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 6))
        + _chunk(b"IEND", b"")
    )
