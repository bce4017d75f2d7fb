"""Every aiortc internal the relay relies on, in one place.

aiortc decodes everything it receives and encodes everything it sends; the relay needs the
encoded frames instead. aiortc is pinned exactly (pyproject) and
tests/signaling/test_aiortc_hooks.py fails if an upgrade moves anything used here.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

logger = logging.getLogger(__name__)

AIORTC_VERSION = "1.16.0"

# Name-mangled attributes of RTCRtpReceiver (see aiortc/rtcrtpreceiver.py).
DECODER_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
RTX_SSRC_ATTR = "_RTCRtpReceiver__rtx_ssrc"
STARTED_ATTR = "_RTCRtpReceiver__started"
LOOPBACK_MARK = "_openconsult_loopback"

EncodedFrameHandler = Callable[[RTCRtpCodecParameters, JitterFrame], None]


class EncodedFrameTap(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue.

    `RTCRtpReceiver._handle_rtp_packet` (on the event loop) puts each frame the jitter buffer
    completes, as `(codec, JitterFrame)`, into this queue, and a decoder thread reads it. The tap
    hands every frame to the relay instead, and to the decoder only while `decode` is set (a
    transcoding leg needs pictures). The `None` a stopping receiver puts goes through, so the
    decoder thread still ends and ends the remote track.
    """

    def __init__(self, on_frame: EncodedFrameHandler) -> None:
        super().__init__()
        self._on_frame = on_frame
        self.decode = False
        self.frames_tapped = 0
        self.frames_to_decoder = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None, block, timeout)
            return
        codec, frame = item
        self.frames_tapped += 1
        try:
            self._on_frame(codec, frame)
        except Exception:  # a relay bug must not kill the receiver's RTP handling
            logger.exception("relay failed to forward an encoded frame")
        if self.decode:
            self.frames_to_decoder += 1
            super().put(item, block, timeout)


def install_encoded_frame_tap(
    receiver: RTCRtpReceiver, on_frame: EncodedFrameHandler
) -> EncodedFrameTap:
    """Route the receiver's encoded frames to `on_frame`; call before the receiver starts."""
    if getattr(receiver, STARTED_ATTR):
        raise RuntimeError("the receiver already started: install the tap before it connects")
    tap = EncodedFrameTap(on_frame)
    setattr(receiver, DECODER_QUEUE_ATTR, tap)
    return tap


def publisher_media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC that carries the publisher's media, never its retransmission (RTX) SSRC."""
    rtx: dict[int, int] = getattr(receiver, RTX_SSRC_ATTR)
    if rtx:
        return next(iter(rtx.values()))
    sources = [s for s in receiver.getSynchronizationSources() if s.source not in rtx]
    if not sources:
        return None
    latest = max(sources, key=lambda s: s.timestamp)
    return int(latest.source)


def send_picture_loss(receiver: RTCRtpReceiver) -> asyncio.Task[None] | None:
    """Ask the publisher behind `receiver` for a keyframe (RTCP PLI)."""
    ssrc = publisher_media_ssrc(receiver)
    if ssrc is None:
        return None
    return asyncio.ensure_future(receiver._send_rtcp_pli(ssrc))


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` whenever the viewer behind `sender` sends a PLI or FIR.

    The sender's RTCP handler calls `self._send_keyframe()` for both; aiortc's own version only
    flags its encoder, which a forwarding sender never uses, so both are called.
    """
    original: Callable[[], None] = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        callback()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def negotiated_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The codec the transceiver sends with and expects first (RTX excluded)."""
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    for codec in codecs:
        if codec.mimeType.lower() != "video/rtx":
            return codec
    return None


def offer_loopback_candidate(pc: RTCPeerConnection) -> None:
    """Make the connection's ICE agents also offer 127.0.0.1, which aioice skips.

    Test and development only (`OPENCONSULT_RTC_LOOPBACK`). Call after setRemoteDescription
    (the answerer) or addTransceiver (the offerer), before setLocalDescription gathers.
    """
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport.iceGatherer._connection
        if getattr(connection, LOOPBACK_MARK, False):
            continue
        original = connection.get_component_candidates

        async def with_loopback(
            component: int,
            addresses: list[str],
            timeout: int = 5,  # noqa: ASYNC109 (aioice's own signature)
            _orig: Any = original,
        ) -> Any:
            if "127.0.0.1" not in addresses:
                addresses = [*addresses, "127.0.0.1"]
            return await _orig(component=component, addresses=addresses, timeout=timeout)

        connection.get_component_candidates = with_loopback  # type: ignore[method-assign]
        setattr(connection, LOOPBACK_MARK, True)
