"""A tiny, playable MP4 (ISO BMFF) built in code for the simulators.

The file is `ftyp`, `moov` (`mvhd`, one video `trak` → `tkhd`, `mdia` → `mdhd`, `hdlr`, `minf` → `vmhd`,
`dinf`, `stbl` with `avc1`/`avcC`, `stts`, `stss`, `stsc`, `stsz`, `stco`) and `mdat`. The frames are real
H.264 (see `bot.sim.h264`): a small picture with a scrolling gradient and a moving bar, a few frames per
second, so a player shows something that visibly moves.

Padding to an exact size goes at the end of `mdat`, after the last frame: no sample table points at it, so
players ignore it, the top-level boxes stay `ftyp`, `moov`, `mdat`, and a padded file can be streamed as
header + zeros without building it whole. A size too small for the whole clip gets fewer frames (a shorter
clip) and, below one frame, a smaller picture; a size below the smallest file (one 16×16 frame) gets that
smallest file, as the old frameless version raised small sizes to its minimum.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator

from bot.sim import h264

__all__ = ["DEFAULT_FPS", "DEFAULT_HEIGHT", "DEFAULT_WIDTH", "build_mp4", "iter_boxes", "mp4_parts"]

DEFAULT_WIDTH = 64
DEFAULT_HEIGHT = 48
DEFAULT_FPS = 5

_UNITY_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
_MOVIE_TIMESCALE = 1000
_TICKS_PER_FRAME = 512  # media timescale = fps × 512, so every frame lasts a whole number of ticks
_MAX_BOX = 0xFFFFFFFF


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _clamp(value: int) -> int:
    # Video range, which also keeps every pcm sample non-zero (see h264.idr_slice).
    return 16 if value < 16 else 235 if value > 235 else value


@functools.lru_cache(maxsize=256)
def _frame_nal(index: int, width: int, height: int) -> bytes:
    """Frame `index` of the test pattern as one IDR slice NAL unit.

    A diagonal gradient scrolls by 4 px a frame, colours ramp across the picture and drift, and a bright
    8 px bar moves right by 4 px a frame (wrapping), so consecutive frames always differ.
    """
    bar_x = (index * 4) % width
    y = bytearray(width * height)
    for row in range(height):
        for col in range(width):
            phase = (col + row + 4 * index) % 64
            tri = phase if phase < 32 else 63 - phase
            in_bar = bar_x <= col < bar_x + 8
            y[row * width + col] = 225 if in_bar else _clamp(40 + tri * 4)
    cw, ch = width // 2, height // 2
    cb = bytearray(cw * ch)
    cr = bytearray(cw * ch)
    for row in range(ch):
        for col in range(cw):
            in_bar = bar_x <= 2 * col < bar_x + 8
            cb[row * cw + col] = 40 if in_bar else _clamp(128 + (col * 96) // cw - 48 + (index * 3) % 24)
            cr[row * cw + col] = 150 if in_bar else _clamp(128 + (row * 96) // ch - 48 - (index * 3) % 24)
    pic = h264.Picture(width, height, bytes(y), bytes(cb), bytes(cr))
    return h264.idr_slice(pic, idr_pic_id=index % 2)


def _sample(index: int, width: int, height: int) -> bytes:
    """An MP4 sample: the frame's NAL unit with a 4-byte length prefix (avcC lengthSizeMinusOne = 3)."""
    nal = _frame_nal(index, width, height)
    return struct.pack(">I", len(nal)) + nal


def _stsd(width: int, height: int, fps: int) -> bytes:
    sps, pps = h264.sps(width, height, fps), h264.pps()
    avcc = _box(
        b"avcC",
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]),  # version, profile, compat, level, 4-byte lengths, 1 SPS
        struct.pack(">H", len(sps)), sps,
        bytes([1]), struct.pack(">H", len(pps)), pps,
    )  # fmt: skip
    name = b"reelbot sim I_PCM"
    avc1 = _box(
        b"avc1",
        bytes(6), struct.pack(">H", 1),  # reserved, data_reference_index
        bytes(16), struct.pack(">HH", width, height),
        struct.pack(">II", 0x00480000, 0x00480000), bytes(4), struct.pack(">H", 1),  # 72 dpi, 1 frame per sample
        bytes([len(name)]) + name + bytes(31 - len(name)),  # compressorname, a Pascal string in 32 bytes
        struct.pack(">Hh", 0x0018, -1),  # depth, pre_defined
        avcc,
    )  # fmt: skip
    return _full_box(b"stsd", 0, 0, struct.pack(">I", 1), avc1)


def _moov(width: int, height: int, fps: int, sizes: list[int], mdat_data_offset: int) -> bytes:
    count = len(sizes)
    media_duration = count * _TICKS_PER_FRAME
    duration_ms = round(count * _MOVIE_TIMESCALE / fps)
    mvhd = _full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIII", 0, 0, _MOVIE_TIMESCALE, duration_ms),
        struct.pack(">IH", 0x00010000, 0x0100), bytes(10), _UNITY_MATRIX, bytes(24),
        struct.pack(">I", 2),  # next_track_ID
    )  # fmt: skip
    tkhd = _full_box(
        b"tkhd", 0, 0x3,  # enabled | in movie
        struct.pack(">IIII", 0, 0, 1, 0), struct.pack(">I", duration_ms), bytes(8),
        struct.pack(">hhhH", 0, 0, 0, 0), _UNITY_MATRIX, struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, fps * _TICKS_PER_FRAME, media_duration, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, 0, struct.pack(">I4s", 0, b"vide"), bytes(12), b"VideoHandler\x00")
    vmhd = _full_box(b"vmhd", 0, 1, bytes(8))
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    stbl = _box(
        b"stbl",
        _stsd(width, height, fps),
        _full_box(b"stts", 0, 0, struct.pack(">III", 1, count, _TICKS_PER_FRAME)),
        _full_box(b"stss", 0, 0, struct.pack(f">I{count}I", count, *range(1, count + 1))),  # every frame is IDR
        _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, count, 1)),  # one chunk holds every sample
        _full_box(b"stsz", 0, 0, struct.pack(f">II{count}I", 0, count, *sizes)),
        _full_box(b"stco", 0, 0, struct.pack(">II", 1, mdat_data_offset)),
    )
    minf = _box(b"minf", vmhd, dinf, stbl)
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    return _box(b"moov", mvhd, trak)


_FTYP = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"avc1", b"mp41")


@functools.lru_cache(maxsize=32)
def _layout(width: int, height: int, fps: int, frames: int) -> tuple[bytes, bytes]:
    """(ftyp + moov, mdat payload with every frame) for a clip of `frames` frames."""
    samples = [_sample(i, width, height) for i in range(frames)]
    sizes = [len(s) for s in samples]
    moov_len = len(_moov(width, height, fps, sizes, 0))  # the offset is a fixed-width field: length is known
    moov = _moov(width, height, fps, sizes, len(_FTYP) + moov_len + 8)
    return _FTYP + moov, b"".join(samples)


def _file_len(width: int, height: int, fps: int, frames: int) -> int:
    head, payload = _layout(width, height, fps, frames)
    return len(head) + 8 + len(payload)


def _smaller_pictures(width: int, height: int) -> Iterator[tuple[int, int]]:
    """The requested picture, then ever smaller ones (the longer side loses a macroblock) down to 16×16."""
    mb = h264.MB_SIZE
    w, h = width, height
    yield w, h
    while w > mb or h > mb:
        if w >= h:
            w -= mb
        else:
            h -= mb
        yield w, h


def _fit(size: int | None, width: int, height: int, fps: int, frames: int) -> tuple[int, int, int]:
    """(width, height, frames) of the richest clip no larger than `size` (the smallest clip if none is)."""
    if size is None:
        return width, height, frames
    for w, h in _smaller_pictures(width, height):
        if _file_len(w, h, fps, 1) > size:
            continue
        # The length grows with the frame count, so the first count that fits, from the top, is the best.
        for count in range(frames, 0, -1):
            if _file_len(w, h, fps, count) <= size:
                return w, h, count
    return h264.MB_SIZE, h264.MB_SIZE, 1


def mp4_parts(
    size: int | None = None,
    *,
    duration_s: float = 5.0,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    fps: int = DEFAULT_FPS,
) -> tuple[bytes, int]:
    """(header bytes, number of zero bytes that follow). The header holds every frame and ends inside `mdat`.

    The clip has round(duration_s × fps) frames (at least one) of width×height (multiples of 16). With `size`,
    header + zeros is exactly `size` bytes: the zeros pad `mdat` after the last frame. A `size` too small for
    the whole clip shortens it, then shrinks the picture; below the smallest playable file the result is that
    file (so the total is larger than `size`, as before).
    """
    if fps < 1:
        raise ValueError("fps must be at least 1")
    frames = max(1, round(duration_s * fps))
    h264.level_idc(width, height, fps)  # validates the picture size before any work
    w, h, count = _fit(size, width, height, fps, frames)
    head, payload = _layout(w, h, fps, count)
    bare = len(head) + 8 + len(payload)
    padding = max(size or bare, bare) - bare
    mdat_size = 8 + len(payload) + padding
    if mdat_size > _MAX_BOX:
        raise ValueError("padded MP4 larger than 4 GiB is not supported")
    return head + struct.pack(">I4s", mdat_size, b"mdat") + payload, padding


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
