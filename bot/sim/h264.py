"""A tiny H.264 encoder for the simulators: Constrained Baseline, every macroblock I_PCM.

I_PCM macroblocks carry their samples raw (256 luma + 2 × 64 chroma bytes, 4:2:0), so there is no transform,
no prediction and no entropy coding beyond the Exp-Golomb fields of the headers. Every picture is one IDR
slice, so every sample is a sync sample. The output is far from compact (~384 bytes per 16×16 macroblock),
which is fine for the few tiny frames the simulators serve, and any H.264 decoder plays it.

Public pieces: `sps`, `pps` and `idr_slice` return complete NAL units (header byte + escaped payload, no start
code), ready for an MP4 `avcC` box or a length-prefixed sample. `escape_rbsp` does the emulation prevention.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["MB_SIZE", "BitWriter", "Picture", "escape_rbsp", "idr_slice", "level_idc", "pps", "sps"]

MB_SIZE = 16
PROFILE_BASELINE = 66
_NAL_SLICE_IDR = 5
_NAL_SPS = 7
_NAL_PPS = 8
_NAL_REF_IDC = 3  # SPS, PPS and IDR slices are reference data
_SLICE_TYPE_I_ALL = 7  # "I", and every slice of the picture is I
_MB_TYPE_I_PCM = 25  # mb_type in an I slice
_LOG2_MAX_FRAME_NUM = 4  # the smallest allowed; every picture is an IDR with frame_num 0

# (level_idc, MaxFS in macroblocks, MaxMBPS, MaxBR in 1000 bit/s for Baseline), Table A-1; level 1b left out.
_LEVELS = (
    (10, 99, 1485, 64),
    (11, 396, 3000, 192),
    (12, 396, 6000, 384),
    (13, 396, 11880, 768),
    (20, 396, 11880, 2000),
    (21, 792, 19800, 4000),
    (22, 1620, 20250, 4000),
    (30, 1620, 40500, 10000),
    (31, 3600, 108000, 14000),
    (32, 5120, 216000, 20000),
    (40, 8192, 245760, 20000),
    (41, 8192, 245760, 50000),
    (42, 8704, 522240, 50000),
    (50, 22080, 589824, 135000),
    (51, 36864, 983040, 240000),
)
# Bits one I_PCM macroblock costs: the samples plus a byte of mb_type/alignment, rounded up.
_BITS_PER_PCM_MB = (256 + 128 + 2) * 8

# Two zero bytes followed by 0x00..0x03 would read as (part of) a start code: an 0x03 goes between them.
_NEEDS_ESCAPE = re.compile(rb"\x00\x00(?=[\x00-\x03])")


class Picture(NamedTuple):
    """One 4:2:0 frame as planes in raster order: Y is width×height, Cb and Cr are (width/2)×(height/2)."""

    width: int
    height: int
    y: bytes
    cb: bytes
    cr: bytes


class BitWriter:
    """Big-endian bit packing with the H.264 descriptors u(n), ue(v) and se(v)."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._pending = 0  # bits in _acc not yet flushed to _out (always < 8 between calls)

    def u(self, nbits: int, value: int) -> None:
        if value < 0 or value >> nbits:
            raise ValueError(f"{value} does not fit in {nbits} bits")
        self._acc = (self._acc << nbits) | value
        self._pending += nbits
        while self._pending >= 8:
            self._pending -= 8
            self._out.append((self._acc >> self._pending) & 0xFF)
        self._acc &= (1 << self._pending) - 1

    def ue(self, value: int) -> None:
        """Unsigned Exp-Golomb: (n-1) zeros then the n-bit binary of value+1."""
        code = value + 1
        self.u(2 * code.bit_length() - 1, code)

    def se(self, value: int) -> None:
        """Signed Exp-Golomb: 1, -1, 2, -2, ... map to 1, 2, 3, 4, ..."""
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        if self._pending:
            self.u(8 - self._pending, 0)

    def raw(self, data: bytes) -> None:
        if self._pending:
            raise ValueError("raw bytes need a byte-aligned writer")
        self._out += data

    def trailing_bits(self) -> bytes:
        """rbsp_trailing_bits (a stop bit, then zeros to the byte boundary); returns the finished RBSP."""
        self.u(1, 1)
        self.align_zero()
        return bytes(self._out)


def escape_rbsp(rbsp: bytes) -> bytes:
    """Emulation prevention: the NAL payload for an RBSP, so no start code can appear inside it."""
    escaped = _NEEDS_ESCAPE.sub(b"\x00\x00\x03", rbsp)
    # A payload ending in 0x00 would merge with a following start code's zeros.
    return escaped + b"\x03" if escaped.endswith(b"\x00") else escaped


def _nal(nal_unit_type: int, rbsp: bytes) -> bytes:
    return bytes([(_NAL_REF_IDC << 5) | nal_unit_type]) + escape_rbsp(rbsp)


def _check_size(width: int, height: int) -> tuple[int, int]:
    if width <= 0 or height <= 0 or width % MB_SIZE or height % MB_SIZE:
        raise ValueError(f"picture size must be positive multiples of {MB_SIZE}, not {width}x{height}")
    return width // MB_SIZE, height // MB_SIZE


def level_idc(width: int, height: int, fps: int) -> int:
    """The lowest level whose frame size, macroblock rate and bit rate limits this I_PCM stream fits."""
    mbs_w, mbs_h = _check_size(width, height)
    frame_mbs = mbs_w * mbs_h
    mb_rate = frame_mbs * fps
    kbit_rate = (mb_rate * _BITS_PER_PCM_MB + 999) // 1000
    for level, max_fs, max_mbps, max_br in _LEVELS:
        if frame_mbs <= max_fs and mb_rate <= max_mbps and kbit_rate <= max_br:
            return level
    raise ValueError(f"{width}x{height} at {fps} fps is beyond every H.264 level")


def sps(width: int, height: int, fps: int) -> bytes:
    """Sequence parameter set NAL unit: Constrained Baseline, 4:2:0, progressive, no cropping, no VUI."""
    mbs_w, mbs_h = _check_size(width, height)
    w = BitWriter()
    w.u(8, PROFILE_BASELINE)
    w.u(8, 0b11000000)  # constraint_set0 + set1: Constrained Baseline; reserved zeros
    w.u(8, level_idc(width, height, fps))
    w.ue(0)  # seq_parameter_set_id
    w.ue(_LOG2_MAX_FRAME_NUM - 4)
    w.ue(2)  # pic_order_cnt_type 2: output order = decoding order, nothing in the slice header
    w.ue(1)  # max_num_ref_frames
    w.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    w.ue(mbs_w - 1)  # pic_width_in_mbs_minus1
    w.ue(mbs_h - 1)  # pic_height_in_map_units_minus1
    w.u(1, 1)  # frame_mbs_only_flag
    w.u(1, 1)  # direct_8x8_inference_flag
    w.u(1, 0)  # frame_cropping_flag
    w.u(1, 0)  # vui_parameters_present_flag: the MP4 carries the timing
    return _nal(_NAL_SPS, w.trailing_bits())


def pps() -> bytes:
    """Picture parameter set NAL unit: CAVLC, one slice group, deblocking control present."""
    w = BitWriter()
    w.ue(0)  # pic_parameter_set_id
    w.ue(0)  # seq_parameter_set_id
    w.u(1, 0)  # entropy_coding_mode_flag: CAVLC (Baseline has no CABAC)
    w.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    w.ue(0)  # num_slice_groups_minus1
    w.ue(0)  # num_ref_idx_l0_default_active_minus1
    w.ue(0)  # num_ref_idx_l1_default_active_minus1
    w.u(1, 0)  # weighted_pred_flag
    w.u(2, 0)  # weighted_bipred_idc
    w.se(0)  # pic_init_qp_minus26
    w.se(0)  # pic_init_qs_minus26
    w.se(0)  # chroma_qp_index_offset
    w.u(1, 1)  # deblocking_filter_control_present_flag: lets the slice switch the filter off
    w.u(1, 0)  # constrained_intra_pred_flag
    w.u(1, 0)  # redundant_pic_cnt_present_flag
    return _nal(_NAL_PPS, w.trailing_bits())


def _block(plane: bytes, stride: int, x: int, y: int, size: int) -> bytes:
    """The size×size block at (x, y) of a raster plane, row by row."""
    return b"".join(plane[(y + r) * stride + x : (y + r) * stride + x + size] for r in range(size))


def _macroblock_samples(pic: Picture, mbx: int, mby: int) -> bytes:
    """The 384 pcm samples of one macroblock: 16 luma rows of 16, then 8×8 Cb, then 8×8 Cr."""
    half = MB_SIZE // 2
    luma = _block(pic.y, pic.width, mbx * MB_SIZE, mby * MB_SIZE, MB_SIZE)
    cb = _block(pic.cb, pic.width // 2, mbx * half, mby * half, half)
    cr = _block(pic.cr, pic.width // 2, mbx * half, mby * half, half)
    return luma + cb + cr


def idr_slice(pic: Picture, idr_pic_id: int) -> bytes:
    """One IDR picture as a single I slice NAL unit whose macroblocks are all I_PCM.

    Consecutive IDR pictures must differ in `idr_pic_id` (alternate 0 and 1). Samples must be 1..255: the
    first edition of the standard forbade 0 in pcm samples, and avoiding it keeps old decoders happy.
    """
    mbs_w, mbs_h = _check_size(pic.width, pic.height)
    chroma_len = (pic.width // 2) * (pic.height // 2)
    if len(pic.y) != pic.width * pic.height or len(pic.cb) != chroma_len or len(pic.cr) != chroma_len:
        raise ValueError("plane sizes do not match the picture size")
    if 0 in pic.y or 0 in pic.cb or 0 in pic.cr:
        raise ValueError("pcm samples must be 1..255")
    w = BitWriter()
    w.ue(0)  # first_mb_in_slice
    w.ue(_SLICE_TYPE_I_ALL)
    w.ue(0)  # pic_parameter_set_id
    w.u(_LOG2_MAX_FRAME_NUM, 0)  # frame_num: always 0 for an IDR picture
    w.ue(idr_pic_id)
    # pic_order_cnt_type 2: no POC fields. I slice: no reference list fields.
    w.u(1, 0)  # dec_ref_pic_marking: no_output_of_prior_pics_flag
    w.u(1, 0)  # dec_ref_pic_marking: long_term_reference_flag
    w.se(0)  # slice_qp_delta
    w.ue(1)  # disable_deblocking_filter_idc 1: off (it would not touch I_PCM samples anyway)
    for mby in range(mbs_h):
        for mbx in range(mbs_w):
            w.ue(_MB_TYPE_I_PCM)
            w.align_zero()  # pcm_alignment_zero_bit
            w.raw(_macroblock_samples(pic, mbx, mby))
    return _nal(_NAL_SLICE_IDR, w.trailing_bits())
