"""The packet path: one publisher's RTP packets rewritten for one viewer, payloads untouched.

An SFU forwards packets, not frames: each packet a publisher sends goes to each viewer with
its header rewritten for that viewer's leg (SSRC, payload type, sequence number, timestamp,
header extension ids), encrypted once per viewer. Payloads are never changed and only read to
tell where a VP8 keyframe starts, so end-to-end encrypted payloads can pass later.

`ViewerStream` keeps what one viewer's stream needs across publisher changes, reconnects and
keyframe waits: sequence numbers and timestamps continue where they stopped, and a bounded
history of sent packets answers the viewer's NACKs (wrapped as RTX when negotiated).
Nothing here knows aiortc; hooks.py moves the bytes in and out.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass, field

RTP_HEADER = struct.Struct("!BBHII")
HISTORY_SIZE = 512  # packets per viewer stream: ~2 s of 640x480 video at ~1 Mbit/s

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"


def vp8_keyframe_start(payload: bytes) -> bool:
    """Whether this VP8 RTP payload starts a keyframe (RFC 7741 descriptor, RFC 6386 tag).

    Reads the payload descriptor and the first byte of the VP8 payload header; nothing else.
    """
    size = len(payload)
    if size < 2:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # S: start of a partition; PID 0: the first one
        return False
    index = 1
    if first & 0x80:  # X: extended control bits
        extended = payload[1]
        index = 2
        if extended & 0x80:  # I: picture id, 7 or 15 bits
            if size <= index:
                return False
            index += 2 if payload[index] & 0x80 else 1
        if extended & 0x40:  # L: TL0PICIDX
            index += 1
        if extended & 0x30:  # T or K: TID/Y/KEYIDX
            index += 1
    return size > index and payload[index] & 0x01 == 0


@dataclass(frozen=True)
class StreamParameters:
    """What the viewer's leg negotiated for one slot (from its transceiver)."""

    ssrc: int
    payload_type: int
    clock_rate: int
    mid: str | None = None
    rtx_ssrc: int | None = None
    rtx_payload_type: int | None = None
    extension_ids: dict[str, int] = field(default_factory=dict)


def _signed16(value: int) -> int:
    value &= 0xFFFF
    return value - 0x10000 if value >= 0x8000 else value


class ViewerStream:
    """One viewer's outgoing stream of one slot, fed by whichever publisher is bound to it."""

    def __init__(self, kind: str, params: StreamParameters) -> None:
        self.kind = kind
        self.params = params
        # Both continue across publishers: the viewer sees one stream that never jumps.
        self.next_sequence = secrets.randbelow(0x8000)  # as aiortc: no early wraparound
        self._last_timestamp = secrets.randbelow(1 << 32)
        self._last_sent_at: float | None = None
        self._rtx_sequence = secrets.randbelow(0x8000)
        self._history: list[tuple[int, bytes, int] | None] = [None] * HISTORY_SIZE
        self.awaiting_keyframe = kind == "video"
        self._started = False
        self._source_ssrc: int | None = None
        self._start_sequence = 0
        self._highest = 0
        self._sequence_delta = 0
        self._timestamp_delta = 0
        self.packets_sent = 0
        self.octets_sent = 0
        self.retransmissions_sent = 0
        self.last_timestamp_sent = self._last_timestamp
        self._fixed_extensions = self._mid_element()
        self._abs_id = params.extension_ids.get(ABS_SEND_TIME_URI)
        self._level_byte = (params.extension_ids.get(AUDIO_LEVEL_URI) or 0) << 4
        self._layouts: list[tuple[bytes, bytes] | None] = [None, None]  # without, with level

    def restart(self) -> None:
        """A new publisher (or the same one again): wait for a keyframe, then continue."""
        self._started = False
        self.awaiting_keyframe = self.kind == "video"

    def rewrite(
        self,
        *,
        ssrc: int,
        sequence: int,
        timestamp: int,
        marker: int,
        payload: bytes,
        keyframe: bool,
        now: float,
        abs_send_time: int,
        audio_level: tuple[bool, int] | None = None,
    ) -> bytes | None:
        """The packet as this viewer gets it, or None (dropped: keyframe wait, too old)."""
        if self._started and ssrc != self._source_ssrc:
            self.restart()  # the publisher changed its stream (new SSRC): a new picture
        if not self._started:
            if self.awaiting_keyframe and not keyframe:
                return None
            self._start(ssrc, sequence, timestamp, now)
        ahead = _signed16(sequence - self._highest)
        if ahead > 0:
            self._highest = sequence
        elif _signed16(sequence - self._start_sequence) < 0:
            return None  # from before this viewer's start: the viewer never had its frame
        out_sequence = (sequence + self._sequence_delta) & 0xFFFF
        out_timestamp = (timestamp + self._timestamp_delta) & 0xFFFFFFFF
        if ahead > 0:
            self.next_sequence = (out_sequence + 1) & 0xFFFF
            self._last_timestamp = out_timestamp
            self._last_sent_at = now
        header = RTP_HEADER.pack(
            0x90,  # version 2, no padding (stripped), header extension, no CSRC
            (marker << 7) | self.params.payload_type,
            out_sequence,
            out_timestamp,
            self.params.ssrc,
        ) + self._extensions(abs_send_time, audio_level)
        data = header + payload
        self._history[out_sequence % HISTORY_SIZE] = (out_sequence, data, len(header))
        self.packets_sent += 1
        self.octets_sent += len(payload)
        self.last_timestamp_sent = out_timestamp
        return data

    def skip(self, sequence: int) -> None:
        """The publisher sent a packet this viewer does not get (padding only): no gap."""
        if self._started and _signed16(sequence - self._highest) == 1:
            self._highest = sequence
            self._sequence_delta = (self._sequence_delta - 1) & 0xFFFF

    def retransmission(self, sequence: int) -> bytes | None:
        """The packet the viewer reported lost (NACK), again: RTX-wrapped when negotiated."""
        entry = self._history[sequence % HISTORY_SIZE]
        if entry is None or entry[0] != sequence:
            return None
        _, data, header_size = entry
        self.retransmissions_sent += 1
        rtx_type, rtx_ssrc = self.params.rtx_payload_type, self.params.rtx_ssrc
        if rtx_type is None or rtx_ssrc is None:
            return data
        rtx_sequence = self._rtx_sequence
        self._rtx_sequence = (rtx_sequence + 1) & 0xFFFF
        header = bytearray(data[:header_size])
        header[1] = (header[1] & 0x80) | rtx_type
        struct.pack_into("!H", header, 2, rtx_sequence)
        struct.pack_into("!I", header, 8, rtx_ssrc)
        # RFC 4588: the original sequence number, then the original payload.
        return bytes(header) + data[2:4] + data[header_size:]

    def _start(self, ssrc: int, sequence: int, timestamp: int, now: float) -> None:
        self._started = True
        self.awaiting_keyframe = False
        self._source_ssrc = ssrc
        self._start_sequence = sequence
        self._highest = (sequence - 1) & 0xFFFF  # the first packet counts as the newest
        self._sequence_delta = (self.next_sequence - sequence) & 0xFFFF
        # The first timestamp after a gap advances by the wall-clock time the gap lasted.
        elapsed = 0.0 if self._last_sent_at is None else max(now - self._last_sent_at, 0.0)
        advance = max(1, int(elapsed * self.params.clock_rate))
        start = (self._last_timestamp + advance) & 0xFFFFFFFF
        self._timestamp_delta = (start - timestamp) & 0xFFFFFFFF

    def _mid_element(self) -> bytes:
        ids = self.params.extension_ids
        mid, mid_id = self.params.mid, ids.get(MID_URI)
        if mid is None or mid_id is None:
            return b""
        value = mid.encode()[:16]
        return bytes([(mid_id << 4) | (len(value) - 1)]) + value

    def _extension_layout(self, with_level: bool) -> tuple[bytes, bytes]:
        """The extension block's bytes before and after the variable values (abs-send-time,
        audio level), which only depend on what the viewer negotiated: built once."""
        body_size = len(self._fixed_extensions)
        if self._abs_id is not None:
            body_size += 4
        if with_level:
            body_size += 2
        padding = -body_size % 4
        head = struct.pack("!HH", 0xBEDE, (body_size + padding) // 4) + self._fixed_extensions
        if self._abs_id is not None:
            head += bytes([(self._abs_id << 4) | 2])
        return head, b"\x00" * padding

    def _extensions(self, abs_send_time: int, audio_level: tuple[bool, int] | None) -> bytes:
        """The viewer's own header extensions (RFC 8285 one-byte form), ids as it negotiated."""
        with_level = audio_level is not None and self._level_byte != 0
        layout = self._layouts[with_level]
        if layout is None:
            layout = self._layouts[with_level] = self._extension_layout(with_level)
        head, tail = layout
        if self._abs_id is not None:
            head += (abs_send_time & 0xFFFFFF).to_bytes(3, "big")
        if with_level:
            assert audio_level is not None
            voice, level = audio_level
            head += bytes([self._level_byte, (0x80 if voice else 0) | (level & 0x7F)])
        return head + tail


class RtpView:
    """The few fields of an RTP packet the packet path uses, parsed from its header alone.

    Duck-types as much of aiortc's `RtpPacket` as the receiver's statistics, NACK generator
    and the rewrite read (`ssrc`, `payload_type`, `sequence_number`, `timestamp`, `marker`,
    `payload`, `padding_size`); of the header extensions only abs-send-time (for the bitrate
    estimator) and the audio level (passed on to the viewer) are read.
    """

    __slots__ = (
        "abs_send_time",
        "audio_level",
        "marker",
        "padding_size",
        "payload",
        "payload_type",
        "sequence_number",
        "ssrc",
        "timestamp",
    )

    def __init__(
        self,
        *,
        ssrc: int,
        payload_type: int,
        sequence_number: int,
        timestamp: int,
        marker: int,
        payload: bytes,
        padding_size: int = 0,
        abs_send_time: int | None = None,
        audio_level: tuple[bool, int] | None = None,
    ) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.marker = marker
        self.payload = payload
        self.padding_size = padding_size
        self.abs_send_time = abs_send_time
        self.audio_level = audio_level


_EXTENSION_HEADER = struct.Struct("!HH")


def parse_rtp(
    data: bytes, abs_send_time_id: int | None, audio_level_id: int | None
) -> RtpView | None:
    """The header fields of a decrypted RTP packet (RFC 3550, RFC 8285), or None if malformed.

    Reads the fixed header, skips CSRCs, looks for two header extensions by id and strips
    padding; the payload is sliced out, never read.
    """
    size = len(data)
    if size < 12:
        return None
    first, second, sequence, timestamp, ssrc = RTP_HEADER.unpack_from(data)
    if first >> 6 != 2:
        return None
    pos = 12 + 4 * (first & 0x0F)
    abs_send_time = audio_level = None
    if first & 0x10:
        if pos + 4 > size:
            return None
        profile, length = _EXTENSION_HEADER.unpack_from(data, pos)
        pos += 4
        end = pos + 4 * length
        if end > size:
            return None
        if profile == 0xBEDE or profile & 0xFFF0 == 0x1000:
            one_byte = profile == 0xBEDE
            i = pos
            while i < end:
                byte = data[i]
                if byte == 0:  # padding between elements
                    i += 1
                    continue
                if one_byte:
                    x_id, x_length = byte >> 4, (byte & 0x0F) + 1
                    if x_id == 15:
                        break
                    i += 1
                else:
                    if i + 1 >= end:
                        break
                    x_id, x_length = byte, data[i + 1]
                    i += 2
                if i + x_length > end:
                    return None
                if x_id == abs_send_time_id and x_length == 3:
                    abs_send_time = int.from_bytes(data[i : i + 3], "big")
                elif x_id == audio_level_id and x_length >= 1:
                    level = data[i]
                    audio_level = (bool(level & 0x80), level & 0x7F)
                i += x_length
        pos = end
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or pos + padding > size:
            return None
    return RtpView(
        ssrc=ssrc,
        payload_type=second & 0x7F,
        sequence_number=sequence,
        timestamp=timestamp,
        marker=second >> 7,
        payload=data[pos : size - padding],
        padding_size=padding,
        abs_send_time=abs_send_time,
        audio_level=audio_level,
    )
