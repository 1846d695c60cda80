"""The simulator's MP4: a real H.264 clip a player can show, padded to exact sizes without breaking it.

The checks read the file the way a player would, with a small box walker and Exp-Golomb reader written
here (independent of the encoder): avcC → SPS/PPS → picture size and profile; sample tables → the frames in
`mdat`; each frame → a slice of I_PCM macroblocks whose samples are the picture. ffprobe/ffmpeg, when
installed, give a second opinion.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from pathlib import Path

import av
import av.logging
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.sim import h264
from bot.sim.mp4 import DEFAULT_FPS, DEFAULT_HEIGHT, DEFAULT_WIDTH, build_mp4, iter_boxes, mp4_parts

MiB = 1024 * 1024
CONTAINERS = {"moov", "trak", "mdia", "minf", "stbl", "dinf"}


# -- a reader written for the tests -------------------------------------------------------------------------


def unescape(payload: bytes) -> bytes:
    """NAL payload → RBSP: drop each 0x03 that follows two zero bytes."""
    out = bytearray()
    zeros = 0
    for byte in payload:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class BitReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0  # in bits

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.data[self.pos // 8]
            value = (value << 1) | ((byte >> (7 - self.pos % 8)) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)

    def byte_aligned(self) -> bool:
        return self.pos % 8 == 0

    def take_bytes(self, n: int) -> bytes:
        assert self.byte_aligned()
        start = self.pos // 8
        self.pos += 8 * n
        return self.data[start : start + n]

    def rest_is_trailing_bits(self) -> bool:
        """rbsp_trailing_bits: one stop bit, zeros to the byte boundary, and nothing after."""
        if self.u(1) != 1:
            return False
        while not self.byte_aligned():
            if self.u(1):
                return False
        return self.pos == 8 * len(self.data)


@dataclass
class Sps:
    profile: int
    constraints: int
    level: int
    log2_max_frame_num: int
    poc_type: int
    width: int
    height: int
    frame_mbs_only: int
    cropping: int


def parse_sps(nal: bytes) -> Sps:
    assert nal[0] & 0x1F == 7
    r = BitReader(unescape(nal[1:]))
    profile, constraints, level = r.u(8), r.u(8), r.u(8)
    assert r.ue() == 0  # seq_parameter_set_id
    log2_max_frame_num = r.ue() + 4
    poc_type = r.ue()
    assert poc_type == 2, "the reader only follows the POC type the encoder uses"
    r.ue()  # max_num_ref_frames
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    width = (r.ue() + 1) * 16
    height = (r.ue() + 1) * 16
    frame_mbs_only = r.u(1)
    r.u(1)  # direct_8x8_inference_flag
    cropping = r.u(1)
    assert cropping == 0
    assert r.u(1) == 0  # no VUI
    assert r.rest_is_trailing_bits()
    return Sps(profile, constraints, level, log2_max_frame_num, poc_type, width, height, frame_mbs_only, cropping)


def parse_pps_deblocking_flag(nal: bytes) -> int:
    assert nal[0] & 0x1F == 8
    r = BitReader(unescape(nal[1:]))
    r.ue(), r.ue()  # pps id, sps id
    assert r.u(1) == 0  # CAVLC
    r.u(1)
    assert r.ue() == 0  # one slice group
    r.ue(), r.ue(), r.u(1), r.u(2), r.se(), r.se(), r.se()
    deblocking = r.u(1)
    r.u(1)
    assert r.u(1) == 0  # no redundant_pic_cnt
    assert r.rest_is_trailing_bits()
    return deblocking


def decode_pcm_frame(nal: bytes, sps: Sps, deblocking_present: int) -> bytes:
    """An all-I_PCM IDR slice → its luma plane (raster order). Fails on anything else."""
    assert nal[0] == 0x65  # nal_ref_idc 3, IDR slice
    r = BitReader(unescape(nal[1:]))
    assert r.ue() == 0  # first_mb_in_slice
    assert r.ue() in (2, 7)  # I slice
    assert r.ue() == 0  # pps id
    assert r.u(sps.log2_max_frame_num) == 0  # frame_num of an IDR picture
    r.ue()  # idr_pic_id
    r.u(1), r.u(1)  # dec_ref_pic_marking for an IDR
    r.se()  # slice_qp_delta
    if deblocking_present and r.ue() != 1:
        r.se(), r.se()
    mbs_w = sps.width // 16
    luma = bytearray(sps.width * sps.height)
    for mb in range(mbs_w * (sps.height // 16)):
        assert r.ue() == 25, f"macroblock {mb} is not I_PCM"
        while not r.byte_aligned():
            assert r.u(1) == 0  # pcm_alignment_zero_bit
        samples = r.take_bytes(384)
        x0, y0 = (mb % mbs_w) * 16, (mb // mbs_w) * 16
        for row in range(16):
            luma[(y0 + row) * sps.width + x0 : (y0 + row) * sps.width + x0 + 16] = samples[row * 16 : row * 16 + 16]
    assert r.rest_is_trailing_bits()
    return bytes(luma)


def child(data: bytes, path: str) -> tuple[int, int]:
    """(offset, size) of the box at a slash path such as 'moov/trak/mdia/mdhd'."""
    start, end = 0, len(data)
    found = (0, 0)
    for name in path.split("/"):
        boxes = {kind: (off, size) for kind, off, size in iter_boxes(data, start, end)}
        assert name in boxes, f"{name} missing in {path}"
        found = boxes[name]
        start, end = found[0] + 8, found[0] + found[1]
    return found


def payload(data: bytes, path: str) -> bytes:
    off, size = child(data, path)
    return data[off + 8 : off + size]


def span(data: bytes, path: str) -> tuple[int, int]:
    """(start, end) of the box's payload."""
    off, size = child(data, path)
    return off + 8, off + size


@dataclass
class Clip:
    sps: Sps
    deblocking_present: int
    timescale: int
    durations: list[int]
    sync: list[int]
    samples: list[bytes]
    mdat_end_of_samples: int
    mdat_end: int


STBL = "moov/trak/mdia/minf/stbl"


def read_clip(data: bytes) -> Clip:
    avc1 = payload(data, f"{STBL}/stsd")[8:]  # version/flags, entry_count
    assert avc1[4:8] == b"avc1"
    width, height = struct.unpack_from(">HH", avc1, 8 + 24)
    avcc_at = 8 + 78
    assert avc1[avcc_at + 4 : avcc_at + 8] == b"avcC"
    avcc = avc1[avcc_at + 8 :]
    assert avcc[0] == 1
    assert avcc[4] & 0x3 == 3  # 4-byte sample lengths
    assert avcc[5] & 0x1F == 1  # one SPS
    sps_len = struct.unpack_from(">H", avcc, 6)[0]
    sps = parse_sps(avcc[8 : 8 + sps_len])
    assert (avcc[1], avcc[2], avcc[3]) == (sps.profile, sps.constraints, sps.level)
    pps_at = 8 + sps_len
    assert avcc[pps_at] == 1
    pps_len = struct.unpack_from(">H", avcc, pps_at + 1)[0]
    deblocking = parse_pps_deblocking_flag(avcc[pps_at + 3 : pps_at + 3 + pps_len])
    assert (width, height) == (sps.width, sps.height)

    timescale = struct.unpack_from(">I", payload(data, "moov/trak/mdia/mdhd"), 12)[0]
    stts = payload(data, f"{STBL}/stts")
    durations: list[int] = []
    for i in range(struct.unpack_from(">I", stts, 4)[0]):
        count, delta = struct.unpack_from(">II", stts, 8 + 8 * i)
        durations += [delta] * count
    stss = payload(data, f"{STBL}/stss")
    sync = list(struct.unpack_from(f">{struct.unpack_from('>I', stss, 4)[0]}I", stss, 8))
    stsz = payload(data, f"{STBL}/stsz")
    fixed, count = struct.unpack_from(">II", stsz, 4)
    assert fixed == 0
    sizes = struct.unpack_from(f">{count}I", stsz, 12)
    stsc = payload(data, f"{STBL}/stsc")
    assert struct.unpack_from(">IIII", stsc, 4) == (1, 1, count, 1)  # one chunk with every sample
    stco = payload(data, f"{STBL}/stco")
    assert struct.unpack_from(">I", stco, 4)[0] == 1
    offset = struct.unpack_from(">I", stco, 8)[0]

    mdat_off, mdat_size = next((o, s) for kind, o, s in iter_boxes(data) if kind == "mdat")
    assert mdat_off + 8 <= offset
    samples = []
    for size in sizes:
        samples.append(data[offset : offset + size])
        offset += size
    assert offset <= mdat_off + mdat_size
    return Clip(sps, deblocking, timescale, durations, sync, samples, offset, mdat_off + mdat_size)


def nal_of(sample: bytes) -> bytes:
    (length,) = struct.unpack_from(">I", sample)
    assert length == len(sample) - 4, "one length-prefixed NAL unit per sample"
    return sample[4:]


# -- the tests ------------------------------------------------------------------------------------------


def test_the_default_file_is_a_small_h264_track() -> None:
    data = build_mp4()

    assert len(data) < 200 * 1024
    assert [kind for kind, _, _ in iter_boxes(data)] == ["ftyp", "moov", "mdat"]
    assert data[8:12] == b"isom"
    assert b"avc1" in payload(data, "ftyp")
    assert payload(data, "moov/trak/mdia/hdlr")[8:12] == b"vide"
    stbl_children = [kind for kind, _, _ in iter_boxes(data, *span(data, STBL))]
    assert stbl_children == ["stsd", "stts", "stss", "stsc", "stsz", "stco"]
    clip = read_clip(data)
    assert (clip.sps.width, clip.sps.height) == (DEFAULT_WIDTH, DEFAULT_HEIGHT)
    assert clip.sps.profile == 66
    assert clip.sps.constraints & 0xC0 == 0xC0  # constraint_set0+1: Constrained Baseline
    assert clip.sps.frame_mbs_only == 1


@pytest.mark.parametrize("duration_s", [5.0, 2.0, 10.0])
def test_frame_count_and_duration_follow_the_requested_length(duration_s: float) -> None:
    head, padding = mp4_parts(duration_s=duration_s)
    clip = read_clip(head + bytes(padding))

    assert len(clip.samples) == round(DEFAULT_FPS * duration_s)
    assert sum(clip.durations) / clip.timescale == pytest.approx(duration_s)
    assert len(set(clip.durations)) == 1  # constant frame rate
    assert clip.sync == list(range(1, len(clip.samples) + 1))  # every frame is a keyframe
    mvhd = payload(head, "moov/mvhd")
    timescale, duration = struct.unpack_from(">II", mvhd, 12)
    assert duration / timescale == pytest.approx(duration_s)


def test_every_frame_is_a_whole_picture_of_pcm_macroblocks_and_the_picture_moves() -> None:
    clip = read_clip(build_mp4())

    frames = [decode_pcm_frame(nal_of(s), clip.sps, clip.deblocking_present) for s in clip.samples]

    assert all(len(f) == DEFAULT_WIDTH * DEFAULT_HEIGHT for f in frames)
    assert all(a != b for a, b in itertools.pairwise(frames)), "consecutive frames must differ"
    assert len(set(frames)) > len(frames) // 2
    assert all(min(f) > 0 for f in frames)  # pcm samples of 0 are forbidden by old decoders


def test_no_nal_payload_contains_a_start_code_pattern() -> None:
    clip = read_clip(build_mp4())
    for sample in clip.samples:
        nal = nal_of(sample)
        for pattern in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
            assert pattern not in nal


@pytest.mark.parametrize(
    ("rbsp", "escaped"),
    [
        (b"\x00\x00\x01", b"\x00\x00\x03\x01"),
        (b"\x00\x00\x00\x00\x01", b"\x00\x00\x03\x00\x00\x03\x01"),
        (b"\x00\x00\x04", b"\x00\x00\x04"),
        (b"\x01\x00\x00\x03\x05", b"\x01\x00\x00\x03\x03\x05"),
        (b"\x05\x00", b"\x05\x00\x03"),
        (b"\x05\x00\x00", b"\x05\x00\x00\x03"),
    ],
)
def test_emulation_prevention_known_cases(rbsp: bytes, escaped: bytes) -> None:
    assert h264.escape_rbsp(rbsp) == escaped


@given(st.binary(max_size=64).map(lambda b: b + b"\x80"))  # an RBSP ends with its stop bit
def test_emulation_prevention_round_trips_and_hides_start_codes(rbsp: bytes) -> None:
    escaped = h264.escape_rbsp(rbsp)
    assert unescape(escaped) == rbsp
    for pattern in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
        assert pattern not in escaped


def test_exp_golomb_fields_read_back() -> None:
    w = h264.BitWriter()
    values = [0, 1, 2, 25, 255, 1000]
    for v in values:
        w.ue(v)
    for v in (0, 1, -1, 7, -8):
        w.se(v)
    r = BitReader(w.trailing_bits())
    assert [r.ue() for _ in values] == values
    assert [r.se() for _ in range(5)] == [0, 1, -1, 7, -8]
    assert r.rest_is_trailing_bits()


@pytest.mark.parametrize("size", [3 * MiB + 123, 512 * 1024, 200 * 1024, 4096])
def test_padded_files_are_exact_and_keep_playable_frames(size: int) -> None:
    head, padding = mp4_parts(size)
    data = build_mp4(size)

    assert len(data) == size == len(head) + padding
    assert data == head + bytes(padding)
    assert [kind for kind, _, _ in iter_boxes(data)] == ["ftyp", "moov", "mdat"]
    clip = read_clip(data)
    assert clip.mdat_end - clip.mdat_end_of_samples == padding  # padding is after every frame, unreferenced
    assert clip.samples
    for sample in clip.samples:
        decode_pcm_frame(nal_of(sample), clip.sps, clip.deblocking_present)


def test_large_padding_does_not_change_the_frames() -> None:
    plain = read_clip(build_mp4())
    padded = read_clip(build_mp4(5 * MiB))
    assert padded.samples == plain.samples


def test_a_size_too_small_for_the_clip_gets_a_shorter_clip_not_a_broken_one() -> None:
    full = len(build_mp4())
    clip = read_clip(build_mp4(full - 1))
    assert 0 < len(clip.samples) < round(DEFAULT_FPS * 5.0)
    assert (clip.sps.width, clip.sps.height) == (DEFAULT_WIDTH, DEFAULT_HEIGHT)


def test_a_size_below_the_smallest_file_gets_the_smallest_file() -> None:
    data = build_mp4(100)
    clip = read_clip(data)
    assert len(data) > 100
    assert (clip.sps.width, clip.sps.height, len(clip.samples)) == (16, 16, 1)
    assert len(build_mp4(len(data))) == len(data)


def test_streaming_parts_never_build_the_padding() -> None:
    head, padding = mp4_parts(3 * 1024 * MiB)
    assert len(head) < 200 * 1024
    assert len(head) + padding == 3 * 1024 * MiB


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="4 GiB"):
        mp4_parts(5 * 1024 * MiB)
    with pytest.raises(ValueError, match="multiples of 16"):
        mp4_parts(width=60)
    with pytest.raises(ValueError, match="fps"):
        mp4_parts(fps=0)


def test_other_picture_sizes_and_rates_are_described_correctly() -> None:
    head, padding = mp4_parts(duration_s=1.0, width=96, height=64, fps=10)
    clip = read_clip(head + bytes(padding))
    assert (clip.sps.width, clip.sps.height, len(clip.samples)) == (96, 64, 10)
    assert sum(clip.durations) / clip.timescale == pytest.approx(1.0)


# -- a second opinion: FFmpeg's own demuxer and decoder (through PyAV, whose wheels carry them) -----------------


@pytest.mark.parametrize("size", [None, 2 * MiB + 7])
def test_ffmpeg_reads_and_decodes_a_constrained_baseline_clip(tmp_path: Path, size: int | None) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(build_mp4(size))
    av.logging.set_level(av.logging.ERROR)  # PyAV forwards none of FFmpeg's messages unless asked
    with av.logging.Capture() as complaints, av.open(str(path)) as container:
        (stream,) = container.streams.video
        decoded = sum(1 for _ in container.decode(stream))
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.profile == "Constrained Baseline"
        assert (stream.codec_context.width, stream.codec_context.height) == (DEFAULT_WIDTH, DEFAULT_HEIGHT)
        assert stream.duration is not None
        assert stream.time_base is not None
        assert float(stream.duration * stream.time_base) == pytest.approx(5.0)
    assert decoded == 5 * DEFAULT_FPS
    assert [message for level, _, message in complaints if level <= av.logging.ERROR] == []
