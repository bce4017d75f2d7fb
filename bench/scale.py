"""Visits on three nodes: placement spread, the signaling route, failover and drain.

    python bench/scale.py [--visits 30] [--kills 10] [--quick]

Starts, all on 127.0.0.1 and stopped by their PIDs at the end: a fresh PostgreSQL database
(created and dropped here, on the server of `--postgres`), a redis-server of its own on a free
port, three app processes (`python -m app serve`, node ids app1..app3) sharing both, and nginx in
front of them with the shipped deploy/nginx.conf (tests/support/nginx.py renders it for loopback
ports). It seeds one clinic with a provider, a patient and an admitted visit per
visit asked for (plus one spare visit for the drain check).

Each visit gets two synthetic participants, its provider and its patient, each one aiortc peer
connection (tests/signaling/peers.py's `ClientPeer`, VP8 only) whose camera sends pre-encoded
VP8 frames (160x120, 10 fps, a keyframe every second and on every keyframe request): no encoder
and no decoder runs on this side, so 60 peers fit on the machine beside the servers. A
participant does what a visit page does: it asks `POST /api/visits/{id}/placement` through the
proxy (which sends it to any node), opens its `/visit` socket at the placement's `socket_path`
through the proxy (nginx sends `/node/<id>/socket.io/` to that node), waits for `joined`,
offers, and counts the video frames that reach it from the other participant (encoded frames,
counted as aiortc's jitter buffer completes them). When its socket drops it does what the page
does (frontend/static/js/visit/app.js): re-asks the placement and reconnects, with the page's
backoff (at once, then 0.3, 0.6, 1.2, 2 and 3 s between tries).

The figures (the last line is one JSON object with all of them):

- `visits_per_node_max`, `visits_per_node_min`: how many visits each node owns once all the
  visits have started (started `--concurrency` at a time, each as soon as the previous wave has
  video); `visits_per_node` has the whole split, `split_visits` counts visits whose two
  participants ended up on different nodes (should be 0).
- `join_to_video_p50_s`, `join_to_video_p95_s`: per visit, from its first placement request to
  both participants receiving video.
- signaling round trip: an acknowledged `media_state` event (the page's camera and microphone
  state; the owner answers from memory after the same session checks as any visit event), timed
  from the call to its acknowledgement, on two sockets of each visit's provider opened for
  this: `nonowner_rtt_p50_ms` / `_p99_ms` by the route a page takes whatever node served it,
  through nginx's `/node/<owner>/socket.io/` route to the owner; `owner_rtt_p50_ms` / `_p99_ms`
  straight to the owner's own port, no proxy. Calls alternate between the two routes, one at a
  time, `--rtt-samples` per visit and route. `nonowner_vs_owner_rtt_ratio` is the ratio of the
  two p50s: the proxy hop's cost. A page lands on any node for its pages and API, but its visit
  socket always goes to the owner through nginx's path routing (a socket on another node is
  refused with `wrong_node`), so signaling is never relayed between nodes.
- failover: `--kills` times, a live visit is picked at random and its owner is killed with
  SIGKILL; for every visit that node owned, the time from the kill until both of its
  participants receive video again (they notice the dropped socket, re-ask the placement, which
  places the visit on a live node, reconnect, offer again, and the relay forwards the other's
  keyframe). `failover_p50_s` / `failover_p95_s` are over all those visits of all kills
  (`failover_samples` of them; `failover_failed` had no video within 60 s);
  `failover_last_visit_p50_s` is, per kill, the time until the last of the killed node's visits
  had video again. `failover_stages_p50_s` says where the time goes: p50, over the same
  visits, of when the later of the two participants had noticed the dropped socket
  (`dropped`), had the new placement (`placed`, its last try's), had joined on the new owner
  (`joined`), had the relay's answer (`answered`), had its peer connection up (`connected`)
  and had video (`video`), in seconds from the kill. Once the kill's visits have video again
  (or 60 s passed), a replacement node with the same id and port starts (as a container
  restart) and the next kill waits until it is ready, so there are three nodes at each kill
  (started at the kill, its boot would take the CPU the failover needs on two cores).
  `failover_kills` is how many kills ran: no new kill starts once the time budget (`--budget`,
  540 s, less 90 s kept for the drain and the stop) is spent, so the whole run stays bounded.
- `nodes_cpu_pct_with_all_visits`: each node's CPU (% of one core) over 3 s with every visit
  live (the relays forwarding 10 fps each way).
- health: `participants_without_video_at_start` / `_after_kills` count participants that got no
  frame over 2 s once the visits had started and after the last kill (both should be 0);
  `reconnects_before_kills` counts sockets that dropped with no kill (a stalled server; 0);
  `reoffers_*` count new peer connections on the same socket after one failed (the page's
  recovery, which the participants copy).
- drain: the node owning the most live visits gets SIGTERM. While it drains, `/readyz` must say
  so, its visits must keep receiving video (`drain_visits_kept_video`), and the spare visit,
  placed through the proxy, must go to another node (`drain_new_visit_elsewhere`). Then, at
  `--drain-hold` seconds after the signal, the providers end those visits. `drain_s` is the
  time from SIGTERM to the process's exit, and `drain_condition` what ended the drain:
  "visits_ended" (expected), or "drain_timeout" if the process outlived
  OPENCONSULT_DRAIN_TIMEOUT_SECONDS (60 here) with those visits ended;
  `drain_exit_after_last_visit_end_s` is the part after the last visit ended.

`bench_loop_lag_p99_ms` / `_max_ms`: how late this process's own event loop ran while it
played the 60 participants, and `bench_cpu_pct` its CPU (% of one core) meanwhile: large lags
mean the synthetic side, not the servers, was slow. `machine_load_1m_before` / `_after` are the
machine's load average: on a shared machine every figure above grows with it.

`--quick` runs 6 visits, 2 kills and fewer samples, for a try in about two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import logging
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

# `python bench/scale.py` puts bench/ on the import path, not the repository root where
# tests.support lives (app, scheduling and signaling come from the editable install).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import asyncpg
import av
import socketio
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from app.core.auth import hash_password, issue_session_token
from app.core.config import load_settings
from app.core.db import Database
from app.core.models import Clinic, Patient, Role, User
from app.migrations import upgrade
from bench.waiting_room import SECRET, bench_env, percentile
from scheduling.models import Appointment, AppointmentType, ProviderSchedule
from signaling.checkin.patient_session import issue_patient_token
from signaling.models import CheckIn, ConsentDocument, ConsentRecord, Visit
from signaling.relay import hooks
from tests.signaling.conftest import daytime_zone
from tests.signaling.peers import ClientPeer
from tests.support.nginx import NODE_IDS, Proxy, executable, nginx_proxy
from tests.support.servers import HOST, ROOT, free_port, redis_server, tail
from tests.support.waiting import wait_for

FPS = 10
WIDTH, HEIGHT = 160, 120
DRAIN_TIMEOUT_S = 60
# A participant's pause before each try to reach its visit's node, as the page's backoff.
BACKOFF_S = (0.0, 0.3, 0.6, 1.2, 2.0, 3.0)
FAILOVER_LIMIT_S = 60.0  # a visit without video this long after a kill counts as failed
VIDEO_TIMEOUT_S = 60.0
SLOW_FAILOVER_S = 15.0  # a visit slower than this to recover has its participants' errors shown


# ---------------------------------------------------------------- pre-encoded camera


def encode_gop(frames: int = FPS) -> list[bytes]:
    """One second of VP8 (a keyframe, then inter frames) of a moving pattern, encoded once."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.time_base = fractions.Fraction(1, FPS)
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.bit_rate = 150_000
    codec.gop_size = frames
    packets: list[bytes] = []
    for i in range(frames):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for n, plane in enumerate(frame.planes):
            plane.update(bytes((i * 8 + n * 40 + x) % 256 for x in range(plane.buffer_size)))
        frame.pts = i
        packets += [bytes(p) for p in codec.encode(frame)]
    packets += [bytes(p) for p in codec.encode(None)]
    if not packets or packets[0][0] & 0x01:
        raise RuntimeError("libvpx did not start with a keyframe")
    return packets


class EncodedCamera(MediaStreamTrack):  # type: ignore[misc]
    """A video track that hands aiortc's sender encoded VP8 frames (it only packetizes them),
    paced at FPS; it starts again from the keyframe when a viewer asks for one."""

    kind = "video"

    def __init__(self, gop: Sequence[bytes]) -> None:
        super().__init__()
        self._gop = gop
        self._index = 0
        self._sent = 0
        self._started: float | None = None

    def keyframe(self) -> None:
        self._index = 0

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._started is None:
            self._started = now
        else:
            due = self._started + self._sent / FPS
            if due > now:
                await asyncio.sleep(due - now)
        packet = av.Packet(self._gop[self._index])
        packet.pts = self._sent * (90000 // FPS)
        packet.time_base = fractions.Fraction(1, 90000)
        self._index = (self._index + 1) % len(self._gop)
        self._sent += 1
        return packet


def synthetic_peer(name: str, gop: Sequence[bytes], on_video: Any) -> ClientPeer:
    """A ClientPeer (the visit page's transceivers, VP8) sending the pre-encoded camera and
    handing every received encoded frame to `on_video` instead of a decoder."""
    peer = ClientPeer(name, sending=False, video_codec="video/VP8")
    camera = EncodedCamera(gop)
    transceivers = peer.pc.getTransceivers()
    sending_video = next(t for t in transceivers if t.kind == "video")
    sending_video.sender.replaceTrack(camera)
    hooks.on_keyframe_request(sending_video.sender, camera.keyframe)
    for transceiver in transceivers:
        if transceiver.kind == "video":
            hooks.install_encoded_frame_tap(transceiver.receiver, lambda codec, frame: on_video())
    return peer


# ---------------------------------------------------------------- data


@dataclass
class SeededVisit:
    id: str
    patient_cookie: str
    provider_token: str


async def seed(url: str, count: int) -> list[SeededVisit]:
    """A clinic with one provider, one checked-in patient and one admitted visit per visit."""
    settings = load_settings(env="test", secret_key=SECRET, DATABASE_URL=url)
    db = Database(settings.resolved_database_url)
    await upgrade(db)
    seeded: list[SeededVisit] = []
    password_hash = hash_password("bench-password-1")
    now = datetime.now(UTC)
    async with db.session() as session:
        clinic = Clinic(name=f"Scale bench {uuid.uuid4().hex[:6]}")
        session.add(clinic)
        await session.flush()
        kind = AppointmentType(clinic_id=clinic.id, name="Video 20", duration_minutes=20)
        consent = ConsentDocument(clinic_id=clinic.id, version=1, title="Consent", body="Text")
        session.add_all([kind, consent])
        await session.flush()
        for n in range(count):
            provider = User(
                clinic_id=clinic.id,
                email=f"scale{n}-{uuid.uuid4().hex[:6]}@bench.example",
                full_name=f"Provider {n}",
                role=Role.PROVIDER,
                password_hash=password_hash,
            )
            patient = Patient(
                clinic_id=clinic.id,
                given_name="Scale",
                family_name=f"Patient{n}",
                birth_date=date(1980, 1, 1),
            )
            session.add_all([provider, patient])
            await session.flush()
            session.add(
                ProviderSchedule(
                    clinic_id=clinic.id, provider_id=provider.id, timezone=daytime_zone()
                )
            )
            start = now + timedelta(minutes=5)
            appointment = Appointment(
                clinic_id=clinic.id,
                provider_id=provider.id,
                patient_id=patient.id,
                appointment_type_id=kind.id,
                start_at=start,
                end_at=start + timedelta(minutes=20),
                busy_until=start + timedelta(minutes=20),
                status="checked-in",
            )
            session.add(appointment)
            await session.flush()
            record = ConsentRecord(
                appointment_id=appointment.id,
                patient_id=patient.id,
                document_id=consent.id,
                version=1,
                accepted_at=now,
            )
            visit = Visit(
                appointment_id=appointment.id,
                clinic_id=clinic.id,
                provider_id=provider.id,
                patient_id=patient.id,
            )
            session.add_all([record, visit])
            await session.flush()
            session.add(
                CheckIn(
                    appointment_id=appointment.id,
                    clinic_id=clinic.id,
                    provider_id=provider.id,
                    patient_id=patient.id,
                    identity_verified_at=now,
                    consent_id=record.id,
                    waiting_since=now - timedelta(minutes=1),
                    admitted_at=now,
                    visit_id=visit.id,
                )
            )
            token, _ = issue_session_token(
                settings, user_id=provider.id, clinic_id=clinic.id, role=Role.PROVIDER
            )
            seeded.append(
                SeededVisit(str(visit.id), issue_patient_token(settings, appointment), token)
            )
        await session.commit()
    await db.dispose()
    return seeded


@contextlib.asynccontextmanager
async def scratch_database(admin_dsn: str) -> Any:
    """A fresh database on the server of `admin_dsn`, dropped on the way out; yields its URL."""
    name = f"oc_scale_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield admin_dsn.rsplit("/", 1)[0] + "/" + name
    finally:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


# ---------------------------------------------------------------- the nodes


class NodeProcess:
    """One app node: started, killed and started again on the same id and port."""

    def __init__(self, node_id: str, env: dict[str, str], log: Path) -> None:
        self.id = node_id
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.env = dict(
            env,
            OPENCONSULT_NODE_ID=node_id,
            OPENCONSULT_NODE_URL=self.url,
            OPENCONSULT_TRUSTED_PROXIES=HOST,  # nginx, on loopback
        )
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "app", "serve", "--host", HOST, "--port", str(self.port)]
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def ready(self, http: aiohttp.ClientSession, limit: float = 60) -> None:
        async def answers() -> bool:
            if not self.alive():
                raise RuntimeError(f"node {self.id} exited:\n{tail(self.log)}")
            try:
                async with http.get(self.url + "/readyz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(answers, limit, f"node {self.id} to be ready")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class Cluster:
    nodes: dict[str, NodeProcess]
    proxy: Proxy  # pages, the API and the visit sockets all go through it
    http: aiohttp.ClientSession


# ---------------------------------------------------------------- participants


class Retry(Exception):
    """This try to reach the visit's node did not work; the participant tries again."""


@dataclass
class Participant:
    """One side of a visit, behaving as the visit page does (frontend/static/js/visit/)."""

    visit: SeededVisit
    role: str  # "patient" or "provider"
    cluster: Cluster
    gop: Sequence[bytes]
    node: str | None = None
    client: socketio.AsyncClient | None = None
    peer: ClientPeer | None = None
    generation: int = 0  # of the current peer connection; an older one's events are ignored
    connected_at: float = 0.0  # when the current socket joined the visit (monotonic)
    first_frame_at: float | None = None  # first video frame on the current peer connection
    frames: int = 0  # video frames received on the current peer connection
    frames_total: int = 0  # on every connection so far
    last_frame_at: float = 0.0
    done: bool = False  # the visit ended or the bench is closing: no more reconnecting
    joining: bool = False
    ended: bool = False  # the visit's "ended" reached this participant
    reconnects: int = 0  # sockets opened again after one dropped
    reoffers: int = 0  # new peer connections on the same socket after one failed
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    # When each step of the last (re)join happened (monotonic): where a failover's time goes.
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        if self.role == "patient":
            return {"Cookie": f"oc_patient={self.visit.patient_cookie}"}
        return {"Authorization": f"Bearer {self.visit.provider_token}"}

    def _frame(self, generation: int) -> None:
        if generation != self.generation:
            return
        self.frames += 1
        self.frames_total += 1
        self.last_frame_at = time.monotonic()
        if self.first_frame_at is None:
            self.first_frame_at = self.marks["video"] = time.monotonic()

    def has_video_since(self, moment: float) -> bool:
        return self.first_frame_at is not None and self.connected_at >= moment

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def placement(self) -> dict[str, Any]:
        url = f"{self.cluster.proxy.url}/api/visits/{self.visit.id}/placement"
        try:
            async with self.cluster.http.post(url, headers=self.headers) as resp:
                if resp.status != 200:
                    raise Retry(f"placement {resp.status}: {(await resp.text())[:200]}")
                body: dict[str, Any] = await resp.json()
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Retry(f"placement: {type(exc).__name__}") from None

    async def join(self, limit: float = 90) -> None:
        """Place, connect to the owner, offer; again until it works or `limit` passes."""
        deadline = time.monotonic() + limit
        self.joining = True
        tries = 0
        try:
            while True:
                await asyncio.sleep(BACKOFF_S[min(tries, len(BACKOFF_S) - 1)])
                tries += 1
                try:
                    await self._join_once()
                    if self.client is not None and self.client.connected:
                        return
                    raise Retry("the socket dropped while joining")
                except Retry as exc:
                    self.errors.append(str(exc))
                    await self._drop()
                    if self.done or time.monotonic() > deadline:
                        raise RuntimeError(f"{self.role} of {self.visit.id}: {exc}") from None
        finally:
            self.joining = False

    async def _join_once(self) -> None:
        placement = await self.placement()
        self.marks["placed"] = time.monotonic()
        client = socketio.AsyncClient(reconnection=False)
        joined = asyncio.get_running_loop().create_future()

        @client.on("joined", namespace="/visit")  # type: ignore[misc]
        def on_joined(data: Any = None) -> None:
            if not joined.done():
                joined.set_result(data)

        @client.on("ended", namespace="/visit")  # type: ignore[misc]
        def on_ended(data: Any = None) -> None:
            # As the page does: it closes its peer connection and its socket.
            self.done = self.ended = True
            self._spawn(self._drop())

        refusal: list[Any] = []
        client.on("connect_error", lambda data=None: refusal.append(data), namespace="/visit")

        @client.on("disconnect", namespace="/visit")  # type: ignore[misc]
        def on_disconnect(*args: Any) -> None:
            if client is self.client and not self.done and not self.joining:
                self._spawn(self._recover())

        try:
            await asyncio.wait_for(
                client.connect(
                    self.cluster.proxy.url,
                    headers=self.headers,
                    auth={"visit_id": self.visit.id},
                    namespaces=["/visit"],
                    transports=["websocket"],
                    socketio_path=str(placement["socket_path"]).strip("/"),
                    wait_timeout=15,
                ),
                20,
            )
            await asyncio.wait_for(joined, 15)
        except (socketio.exceptions.SocketIOError, TimeoutError) as exc:
            await client.disconnect()
            why = refusal[-1] if refusal else exc
            if isinstance(why, dict):
                why = {k: why.get(k) for k in ("code", "node", "epoch") if k in why}
            raise Retry(f"connect to {placement['node']}@{placement['epoch']}: {why}") from None
        self.client = client
        self.node = str(placement["node"])
        self.connected_at = self.marks["joined"] = time.monotonic()
        await self._offer()

    async def _offer(self) -> None:
        """A new peer connection (closing the last one) offered over the socket."""
        client = self.client
        assert client is not None
        self.generation += 1
        generation = self.generation
        old, self.peer = (
            self.peer,
            synthetic_peer(self.role, self.gop, lambda: self._frame(generation)),
        )
        peer = self.peer
        self.first_frame_at, self.frames = None, 0
        if old is not None:
            await old.close()

        @peer.pc.on("connectionstatechange")  # type: ignore[misc]
        def on_state() -> None:
            # The page: a failed connection is offered again after 0.5 s, one that stays
            # "disconnected" for 1.5 s too (aiortc has no ICE restart).
            if peer.pc.connectionState == "connected" and generation == self.generation:
                self.marks["connected"] = time.monotonic()
            elif peer.pc.connectionState == "failed":
                self._spawn(self._offer_again(generation, 0.5))
            elif peer.pc.connectionState == "disconnected":
                self._spawn(self._offer_again(generation, 1.5))

        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        try:
            answer = await client.call(
                "offer", {"sdp": peer.pc.localDescription.sdp}, namespace="/visit", timeout=15
            )
        except socketio.exceptions.SocketIOError as exc:
            raise Retry(f"offer to {self.node}: {type(exc).__name__}") from None
        if not isinstance(answer, dict) or "sdp" not in answer:
            raise Retry(f"offer to {self.node}: {answer}")
        if generation == self.generation:
            self.marks["answered"] = time.monotonic()
            await peer.answered(answer["sdp"])

    async def _offer_again(self, generation: int, delay: float) -> None:
        await asyncio.sleep(delay)
        peer = self.peer
        if (
            generation != self.generation
            or self.done
            or self.joining
            or peer is None
            or peer.pc.connectionState == "connected"
            or self.client is None
            or not self.client.connected
        ):
            return  # superseded, recovered, or the socket's own recovery takes over
        self.reoffers += 1
        try:
            await self._offer()
        except Retry as exc:
            self.errors.append(str(exc))
            self._spawn(self._offer_again(self.generation, 2.0))  # the page waits 2 s

    async def _recover(self) -> None:
        """The socket dropped (its node died or let the visit go): what the page does."""
        self.reconnects += 1
        self.marks = {"dropped": time.monotonic()}
        await self._drop()
        with contextlib.suppress(RuntimeError):
            await self.join()

    async def _drop(self) -> None:
        client, peer = self.client, self.peer
        self.client, self.peer, self.node = None, None, None
        self.generation += 1
        if peer is not None:
            await peer.close()
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()

    async def emit(self, event: str, data: Any) -> None:
        assert self.client is not None
        await self.client.emit(event, data, namespace="/visit")

    async def close(self) -> None:
        self.done = True
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._drop()


@dataclass
class LiveVisit:
    seeded: SeededVisit
    patient: Participant
    provider: Participant

    @property
    def both(self) -> tuple[Participant, Participant]:
        return self.patient, self.provider

    @property
    def node(self) -> str | None:
        return self.provider.node or self.patient.node

    def has_video_since(self, moment: float) -> bool:
        return all(p.has_video_since(moment) for p in self.both)

    async def start(self) -> float:
        """Both participants join; seconds until both receive video."""
        started = time.monotonic()
        await asyncio.gather(*(p.join() for p in self.both))
        await wait_for(
            lambda: self.has_video_since(started), VIDEO_TIMEOUT_S, f"video in {self.seeded.id}"
        )
        return time.monotonic() - started

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.both))


# ---------------------------------------------------------------- phases


def spread(visits: list[LiveVisit]) -> dict[str, Any]:
    counts = Counter(v.node for v in visits)
    per_node = {node_id: counts.get(node_id, 0) for node_id in NODE_IDS}
    return {
        "visits_per_node": per_node,
        "visits_per_node_max": max(per_node.values()),
        "visits_per_node_min": min(per_node.values()),
        "split_visits": sum(v.patient.node != v.provider.node for v in visits),
    }


async def start_visits(visits: list[LiveVisit], concurrency: int) -> list[float]:
    """Start the visits `concurrency` at a time; each one's seconds to video on both sides."""
    times: list[float] = []
    started = time.monotonic()
    for first in range(0, len(visits), concurrency):
        wave = visits[first : first + concurrency]
        times += await asyncio.gather(*(v.start() for v in wave))
        print(
            f"visits with video: {len(times)}/{len(visits)} after "
            f"{time.monotonic() - started:.1f} s",
            flush=True,
        )
    return times


async def probe_socket(
    base: str, path: str, visit: SeededVisit, headers: dict[str, str]
) -> socketio.AsyncClient:
    """A second socket of the visit's provider at `base` + `path`, joined (three tries)."""
    for attempt in range(3):
        client = socketio.AsyncClient(reconnection=False)
        joined = asyncio.get_running_loop().create_future()
        client.on(
            "joined",
            lambda data=None, joined=joined: joined.done() or joined.set_result(data),
            namespace="/visit",
        )
        try:
            await asyncio.wait_for(
                client.connect(
                    base,
                    headers=headers,
                    auth={"visit_id": visit.id},
                    namespaces=["/visit"],
                    transports=["websocket"],
                    socketio_path=path.strip("/"),
                    wait_timeout=15,
                ),
                20,
            )
            await asyncio.wait_for(joined, 15)
            return client
        except (socketio.exceptions.SocketIOError, TimeoutError) as exc:
            await client.disconnect()
            print(f"probe socket at {base}{path}: {exc!r} (try {attempt + 1})", flush=True)
    raise RuntimeError(f"no probe socket at {base}{path}")


async def round_trips(cluster: Cluster, visits: list[LiveVisit], samples: int) -> dict[str, Any]:
    """`media_state` acknowledged: through the proxy's route to the owner vs straight to it."""
    pairs: list[tuple[socketio.AsyncClient, socketio.AsyncClient]] = []
    try:
        for visit in visits:
            owner = cluster.nodes[str(visit.node)]
            path = f"/node/{owner.id}/socket.io"
            headers = visit.provider.headers
            routed = await probe_socket(cluster.proxy.url, path, visit.seeded, headers)
            direct = await probe_socket(owner.url, path, visit.seeded, headers)
            pairs.append((routed, direct))
        through: list[float] = []
        straight: list[float] = []
        state = {"microphone": True, "camera": True}
        for n in range(samples):
            round_started = time.monotonic()
            for routed, direct in pairs:
                order = [(routed, through), (direct, straight)]
                if n % 2:
                    order.reverse()
                for client, into in order:
                    sent = time.perf_counter()
                    ack = await client.call("media_state", state, namespace="/visit", timeout=10)
                    into.append((time.perf_counter() - sent) * 1000)
                    if ack != {"ok": True}:
                        raise RuntimeError(f"media_state answered {ack}")
            # Each socket stays well under the namespace's 10 events a second.
            await asyncio.sleep(max(0.0, 0.25 - (time.monotonic() - round_started)))
    finally:
        for routed, direct in pairs:
            await routed.disconnect()
            await direct.disconnect()
    p50_through, p50_straight = statistics.median(through), statistics.median(straight)
    return {
        "nonowner_route": "nginx /node/<owner>/socket.io/ -> owner",
        "nonowner_rtt_p50_ms": round(p50_through, 2),
        "nonowner_rtt_p99_ms": round(percentile(through, 0.99), 2),
        "owner_rtt_p50_ms": round(p50_straight, 2),
        "owner_rtt_p99_ms": round(percentile(straight, 0.99), 2),
        "nonowner_vs_owner_rtt_ratio": round(p50_through / p50_straight, 3),
        "rtt_samples": len(through),
    }


# A participant's steps back to video after its node died, in order (Participant.marks).
STAGES = ("dropped", "placed", "joined", "answered", "connected", "video")


async def failovers(
    cluster: Cluster, visits: list[LiveVisit], kills: int, rng: random.Random, stop_by: float
) -> dict[str, Any]:
    """Kill -9 a random live visit's owner, `kills` times (fewer if `stop_by` passes first)."""
    samples: list[float] = []
    last_per_kill: list[float] = []
    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    failed = 0
    done = 0
    for k in range(kills):
        if time.monotonic() > stop_by:
            print(f"time budget spent: {k} kills of {kills}", flush=True)
            break
        done += 1
        chosen = rng.choice([v for v in visits if v.node is not None])
        victim = cluster.nodes[str(chosen.node)]
        affected = [v for v in visits if v.node == victim.id]
        if not victim.alive():
            raise RuntimeError(f"{victim.id} is not running")
        for visit in affected:
            for who in visit.both:
                who.errors.clear()
        killed_at = time.monotonic()
        victim.signal(signal.SIGKILL)
        await asyncio.to_thread(victim.proc.wait, 10)  # type: ignore[union-attr]
        recovered: dict[int, float] = {}
        deadline = killed_at + FAILOVER_LIMIT_S
        while len(recovered) < len(affected) and time.monotonic() < deadline:
            for i, visit in enumerate(affected):
                if i not in recovered and visit.has_video_since(killed_at):
                    recovered[i] = max(p.first_frame_at or 0.0 for p in visit.both) - killed_at
            await asyncio.sleep(0.02)
        failed += len(affected) - len(recovered)
        for i in recovered:
            for stage in STAGES:
                # A visit is as far as the later of its two participants.
                at = [p.marks.get(stage) for p in affected[i].both]
                if all(t is not None for t in at):
                    stages[stage].append(max(at) - killed_at)  # type: ignore[type-var]
        for i, visit in enumerate(affected):
            if recovered.get(i, FAILOVER_LIMIT_S) > SLOW_FAILOVER_S:
                for who in visit.both:
                    state = who.peer.pc.connectionState if who.peer else "no peer"
                    print(
                        f"  {'slow' if i in recovered else 'no video'}: {who.role} of "
                        f"{visit.seeded.id[:8]} on {who.node}, peer {state}, frames "
                        f"{who.frames}, tries {len(who.errors)}, last errors {who.errors[-3:]}",
                        flush=True,
                    )
        times = sorted(recovered.values())
        samples += times
        if times:
            last_per_kill.append(times[-1])
        lost = len(affected) - len(recovered)
        print(
            f"kill {k + 1}/{kills}: {victim.id} with {len(affected)} visits; video again in "
            f"{', '.join(f'{t:.2f}' for t in times)} s" + (f"; {lost} failed" if lost else ""),
            flush=True,
        )
        # The replacement (same id and port, as a container restart) boots only now: on this
        # small machine its start-up would take the CPU the failover needs.
        restarted = time.monotonic()
        victim.start()
        await victim.ready(cluster.http)
        print(f"{victim.id} replaced in {time.monotonic() - restarted:.1f} s", flush=True)
    return {
        "failover_kills": done,
        "failover_samples": len(samples),
        "failover_failed": failed,
        "failover_p50_s": round(statistics.median(samples), 3) if samples else None,
        "failover_p95_s": round(percentile(samples, 0.95), 3) if samples else None,
        "failover_max_s": round(max(samples), 3) if samples else None,
        "failover_last_visit_p50_s": (
            round(statistics.median(last_per_kill), 3) if last_per_kill else None
        ),
        "failover_stages_p50_s": {
            stage: round(statistics.median(times), 3) for stage, times in stages.items() if times
        },
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def nodes_cpu(cluster: Cluster, seconds: float = 3.0) -> dict[str, float]:
    """Each node's CPU (% of one core) over `seconds`, with every visit live."""
    before = {n.id: cpu_seconds(n.pid) for n in cluster.nodes.values()}
    await asyncio.sleep(seconds)
    return {
        n.id: round(100 * (cpu_seconds(n.pid) - before[n.id]) / seconds, 1)
        for n in cluster.nodes.values()
    }


async def without_video(visits: list[LiveVisit], seconds: float = 2.0) -> int:
    """How many participants received no video frame over the last `seconds` (each shown)."""
    await asyncio.sleep(seconds)
    now = time.monotonic()
    stalled = [p for v in visits for p in v.both if now - p.last_frame_at > seconds]
    for who in stalled:
        state = who.peer.pc.connectionState if who.peer else "no peer"
        print(
            f"  no video for {now - who.last_frame_at:.1f} s: {who.role} of {who.visit.id[:8]} "
            f"on {who.node}, peer {state}, reconnects {who.reconnects}, reoffers {who.reoffers}",
            flush=True,
        )
    return len(stalled)


async def drain(
    cluster: Cluster, visits: list[LiveVisit], spare: SeededVisit, gop: Sequence[bytes], hold: float
) -> dict[str, Any]:
    counts = Counter(v.node for v in visits if v.node is not None)
    node = cluster.nodes[str(counts.most_common(1)[0][0])]
    draining = [v for v in visits if v.node == node.id]
    frames_before = [p.frames_total for v in draining for p in v.both]
    for v in draining:
        for who in v.both:
            who.reconnects, who.errors = 0, []
    sent = time.monotonic()
    node.signal(signal.SIGTERM)

    async def says_draining() -> bool:
        try:
            async with cluster.http.get(node.url + "/readyz") as resp:
                return resp.status == 503 and (await resp.json()).get("status") == "draining"
        except aiohttp.ClientError:
            return False

    await wait_for(says_draining, 10, f"{node.id}'s /readyz to say draining")
    newcomer = Participant(spare, "provider", cluster, gop)
    placed = await newcomer.placement()
    await asyncio.sleep(max(0.0, hold - (time.monotonic() - sent)))
    frames_after = [p.frames_total for v in draining for p in v.both]
    kept_video = all(b > a for a, b in zip(frames_before, frames_after, strict=True))
    still_there = all(p.node == node.id and not p.reconnects for v in draining for p in v.both)
    if not (kept_video and still_there):
        for who, a, b in zip(
            [p for v in draining for p in v.both], frames_before, frames_after, strict=True
        ):
            print(
                f"  draining: {who.role} of {who.visit.id[:8]} on {who.node}, frames {a} -> {b}, "
                f"reconnects {who.reconnects}, errors {who.errors[-2:]}",
                flush=True,
            )
    for v in draining:
        for p in v.both:
            p.done = True  # the visit ends: nobody reconnects
    for v in draining:
        # As the provider's End button: the "ended" broadcast may close the socket before the
        # acknowledgement arrives, so the broadcast reaching both is what counts.
        await v.provider.emit("end", {})
    await wait_for(lambda: all(p.ended for v in draining for p in v.both), 20, "the visits to end")
    last_end = time.monotonic()
    assert node.proc is not None
    code = await asyncio.to_thread(node.proc.wait, DRAIN_TIMEOUT_S + 30)
    exited = time.monotonic()
    for v in draining:
        await v.close()
    return {
        "drain_node": node.id,
        "drain_live_visits": len(draining),
        "drain_visits_kept_video": kept_video and still_there,
        "drain_new_visit_elsewhere": placed["node"] != node.id,
        # What ended the drain: the last visit ending, or (had it not come) the drain timeout.
        "drain_condition": "visits_ended" if exited - sent < DRAIN_TIMEOUT_S else "drain_timeout",
        "drain_hold_s": hold,
        "drain_timeout_s": DRAIN_TIMEOUT_S,
        "drain_exit_code": code,
        "drain_s": round(exited - sent, 3),
        "drain_exit_after_last_visit_end_s": round(exited - last_end, 3),
    }


# ---------------------------------------------------------------- the run


class LoopLag:
    """How late this process's event loop wakes up (the synthetic side's own saturation)."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self.task: asyncio.Task[None] | None = None
        self.cpu_mark = (0.0, 0.0)

    async def _watch(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.1)
            self.lags_ms.append((time.monotonic() - before - 0.1) * 1000)

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._watch())
        self.cpu_mark = (time.monotonic(), time.process_time())

    def figures(self) -> dict[str, Any]:
        if self.task is not None:
            self.task.cancel()
        if not self.lags_ms:
            return {}
        wall, cpu = self.cpu_mark
        return {
            "bench_loop_lag_p99_ms": round(percentile(self.lags_ms, 0.99), 1),
            "bench_loop_lag_max_ms": round(max(self.lags_ms), 1),
            "bench_cpu_pct": round(
                100 * (time.process_time() - cpu) / (time.monotonic() - wall), 1
            ),
        }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if executable() is None:
        raise SystemExit("nginx is not installed: apt-get install -y nginx")
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    lag = LoopLag()
    gop = encode_gop()
    result: dict[str, Any] = {"nodes": len(NODE_IDS), "visits": args.visits}
    async with scratch_database(args.postgres) as url:
        seeded = await seed(url, args.visits + 1)
        spare = seeded.pop()
        with tempfile.TemporaryDirectory(prefix="openconsult-scale-") as tmp, redis_server() as red:
            env = bench_env(url, tmp, red) | {
                "OPENCONSULT_RTC_LOOPBACK": "true",
                "OPENCONSULT_LOG_LEVEL": "WARNING",
                "OPENCONSULT_DRAIN_TIMEOUT_SECONDS": str(DRAIN_TIMEOUT_S),
            }
            nodes = {i: NodeProcess(i, env, Path(tmp) / f"{i}.log") for i in NODE_IDS}
            visits: list[LiveVisit] = []
            try:
                async with aiohttp.ClientSession() as http:
                    for node in nodes.values():
                        node.start()
                    for node in nodes.values():
                        await node.ready(http)
                    with nginx_proxy({n.id: n.url for n in nodes.values()}) as proxy:
                        cluster = Cluster(nodes, proxy, http)
                        print(f"nodes up in {time.monotonic() - started:.1f} s", flush=True)
                        lag.start()
                        visits += [
                            LiveVisit(
                                s,
                                Participant(s, "patient", cluster, gop),
                                Participant(s, "provider", cluster, gop),
                            )
                            for s in seeded
                        ]
                        join_times = await start_visits(visits, args.concurrency)
                        result |= spread(visits)
                        result["join_to_video_p50_s"] = round(statistics.median(join_times), 3)
                        result["join_to_video_p95_s"] = round(percentile(join_times, 0.95), 3)
                        print(f"placement: {result['visits_per_node']}", flush=True)
                        result["participants_without_video_at_start"] = await without_video(visits)
                        result["nodes_cpu_pct_with_all_visits"] = await nodes_cpu(cluster)
                        result |= await round_trips(cluster, visits, args.rtt_samples)
                        print(
                            f"round trip p50: via proxy {result['nonowner_rtt_p50_ms']} ms, "
                            f"to the owner {result['owner_rtt_p50_ms']} ms",
                            flush=True,
                        )
                        result["reconnects_before_kills"] = sum(
                            p.reconnects for v in visits for p in v.both
                        )
                        result["reoffers_before_kills"] = sum(
                            p.reoffers for v in visits for p in v.both
                        )
                        rng = random.Random(11)
                        # What is left of the time budget, less what the drain and the stop take.
                        stop_by = started + args.budget - 90
                        result |= await failovers(cluster, visits, args.kills, rng, stop_by)
                        result["participants_without_video_after_kills"] = await without_video(
                            visits
                        )
                        result |= await drain(cluster, visits, spare, gop, args.drain_hold)
                        print(f"drain: {result['drain_s']} s", flush=True)
                        result["reoffers_total"] = sum(p.reoffers for v in visits for p in v.both)
                        for visit in visits:
                            await visit.close()
            except BaseException:
                for node in nodes.values():
                    print(f"--- {node.id} log:\n{tail(node.log, 30)}", file=sys.stderr)
                for visit in visits:
                    for who in visit.both:
                        if who.errors or who.first_frame_at is None:
                            print(
                                f"{who.role} of {visit.seeded.id[:8]} on {who.node}: "
                                f"frames {who.frames}, errors {who.errors[-3:]}",
                                file=sys.stderr,
                            )
                raise
            finally:
                for visit in visits:
                    with contextlib.suppress(Exception):
                        await visit.close()
                for node in nodes.values():
                    if node.alive():
                        node.signal(signal.SIGTERM)
                for node in nodes.values():
                    node.stop()
    result |= lag.figures()
    # The machine is shared: its load says how far the figures are from an idle machine's.
    result["machine_load_1m_before"] = round(load_before, 2)
    result["machine_load_1m_after"] = round(os.getloadavg()[0], 2)
    result["machine_cpus"] = os.cpu_count()
    result["bench_seconds"] = round(time.monotonic() - started, 1)
    return result


def main() -> None:
    # A client socket whose server stalls logs this before its disconnect, which the bench
    # counts (reconnects_before_kills); one line each would bury the progress lines.
    logging.getLogger("engineio.client").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--visits", type=int, default=30)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--rtt-samples", type=int, default=10, help="per visit and route")
    parser.add_argument("--concurrency", type=int, default=5, help="visits started at once")
    parser.add_argument("--drain-hold", type=float, default=3.0)
    parser.add_argument(
        "--budget", type=float, default=540, help="seconds; no new kill starts past it less 90 s"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server's admin URL; the bench makes and drops its own database there",
    )
    parser.add_argument("--quick", action="store_true", help="6 visits, 2 kills, fewer samples")
    args = parser.parse_args()
    if args.quick:
        args.visits, args.kills, args.rtt_samples, args.drain_hold = 6, 2, 5, 2.0
    result = asyncio.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
