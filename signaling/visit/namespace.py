"""The visit over Socket.IO: offers to the media relay, layouts, chat and the end of the visit.

A waiting patient's page connects in waiting mode (`auth: {"waiting": true}`), and a provider's
queue page in the provider's lobby (`auth: {"provider_lobby": true}`): each gets its ICE servers
and negotiates a warm connection with the relay, which routes nothing to it. At the admit,
`enter` makes the socket the visit's patient (or provider) and moves that same connection into
the visit (signaling/visit/warm.py).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from aiortc import RTCSessionDescription
from aiortc.sdp import SessionDescription
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import SQLAlchemyError

from app.core import audit
from app.core.errors import Conflict, DomainError, InvalidInput, TryAgain
from app.web.api import parse_model
from app.web.audited import record
from app.web.identity import (
    anonymous_actor,
    client_addr,
    optional_staff,
    patient_session,
    staff_actor,
)
from app.web.keys import DATABASE
from app.web.nodes import NODE, place_visit
from signaling.auth import refused, request_of
from signaling.models import Visit
from signaling.namespace import GuardedNamespace
from signaling.queue.keys import NOTIFIER
from signaling.relay import MediaRelay, RelayError, RoomFull
from signaling.relay.ice import browser_ice_servers
from signaling.relay.relay import MEDIA_RELAY
from signaling.relay.room import MAX_PARTICIPANTS
from signaling.rooms import (
    VISIT_NAMESPACE,
    WAITING_NAMESPACE,
    guest_room,
    visit_provider_room,
    visit_room,
)
from signaling.server import SOCKET_SERVER
from signaling.visit import attendance, guests, warm
from signaling.visit import service as visits
from signaling.visit.attendees import attendee_of
from signaling.visit.chat_limits import check_chat
from signaling.visit.offer_limits import check_offer
from signaling.visit.pages import ice_transport_policy
from signaling.visit.routing import WRONG_NODE, WrongNode, placement_public

log = logging.getLogger(__name__)


async def guests_changed(app: web.Application, visit_id: uuid.UUID) -> None:
    """Send the visit's guest list to its provider (through the manager: every process)."""
    async with app[DATABASE].session() as session:
        found = await guests.guests_of(session, visit_id)
        visit = await session.get(Visit, visit_id)
    await app[SOCKET_SERVER].emit(
        "guests",
        {"guests": [guests.guest_public(g) for g in found]},
        room=visit_provider_room(visit_id),
        namespace=VISIT_NAMESPACE,
    )
    if visit is not None:
        # The clinic queue shows waiting guests too, for a provider not on the visit page.
        await app[NOTIFIER].provider_changed(visit.provider_id)


@dataclass(frozen=True)
class Seat(visits.Attendee):
    """An attendee on one of this process's sockets, and the request that opened the socket."""

    request: web.Request

    @classmethod
    def of(cls, who: visits.Attendee, request: web.Request) -> Seat:
        return cls(who.visit, who.role, who.person_id, who.name, request)


class ConnectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visit_id: uuid.UUID


class WaitingConnectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    waiting: Literal[True]


class ProviderLobbyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_lobby: Literal[True]


class EnterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visit_id: uuid.UUID


class OfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sdp: str = Field(min_length=10, max_length=60_000)

    @field_validator("sdp")
    @classmethod
    def _media_offer(cls, value: str) -> str:
        # The relay pairs its slots with the offer's m-lines; an offer without both kinds
        # would replace the participant's connection with one that carries nothing.
        if not value.startswith("v=0") or "\nm=audio " not in value or "\nm=video " not in value:
            raise ValueError("an SDP offer with audio and video")
        try:
            offer = SessionDescription.parse(value)
        except Exception:
            # aiortc's parser trips on bad input in many ways (assertions, KeyError, ValueError):
            # each is the sender's mistake, answered as bad input, not an internal error.
            raise ValueError("not a well-formed SDP offer") from None
        mids = [media.rtp.muxId for media in offer.media]
        if len(set(mids)) != len(mids):
            raise ValueError("two media sections of the offer share one mid")
        return value


class GuestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    guest_id: uuid.UUID


class AudioOnlyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool


class MediaStateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    microphone: bool
    camera: bool


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=1000)


class VisitNamespace(GuardedNamespace):
    """The visit's provider, patient and guests; each socket may hold one peer connection."""

    def __init__(self, app: web.Application) -> None:
        super().__init__(VISIT_NAMESPACE, app)
        # Per process, like the relay: sid -> attendee, and who offered last per participant
        # (a reload's new socket may offer before the old socket's disconnect arrives).
        self._attendees: dict[str, Seat] = {}
        # Waiting patients' sockets with (or about to make) a warm connection to the relay.
        self._waiting: dict[str, warm.WaitingSeat] = {}
        # Which waiting socket holds each lobby's connection (a reload's new socket may offer
        # before the old one's disconnect arrives; a second tab takes the place over).
        self._lobby_holders: dict[str, str] = {}
        self._offered: dict[tuple[uuid.UUID, str], str] = {}
        # Participants who switched to audio only: they get no video until they switch back.
        self._audio_only: set[tuple[uuid.UUID, str]] = set()
        # Whether each participant's microphone and camera are on, as their page says.
        self._media_state: dict[tuple[uuid.UUID, str], MediaStateIn] = {}

    def joined_visits(self) -> set[str]:
        """Visits someone has joined on this process's sockets (the node's load)."""
        return {str(who.visit.id) for who in self._attendees.values()}

    async def let_go(self, visit_id: str) -> None:
        """The visit was placed on another node (this one lost its lease): its sockets here are
        closed, so their pages ask where it runs now and connect there."""
        for sid, who in list(self._attendees.items()):
            if str(who.visit.id) == visit_id:
                await self.disconnect(sid)

    @property
    def relay(self) -> MediaRelay:
        return self.app[MEDIA_RELAY]

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        request = request_of(environ)
        if isinstance(auth, dict) and "waiting" in auth:
            await self._connect_waiting(sid, request, auth)
            return
        if isinstance(auth, dict) and "provider_lobby" in auth:
            await self._connect_provider_lobby(sid, request, auth)
            return
        try:
            visit_id = parse_model(ConnectIn, auth).visit_id
        except DomainError:
            raise refused("invalid_payload", "Say which visit to join.") from None
        try:
            who = Seat.of(await attendee_of(request, visit_id), request)
        except DomainError as exc:
            staff = await optional_staff(request)
            await record(
                request,
                staff_actor(request, staff) if staff else anonymous_actor(request),
                "visit.join",
                outcome=audit.DENIED,
                object_type="visit",
                object_id=visit_id,
                detail=exc.code,
            )
            raise refused(exc.code, exc.message) from None
        if who.visit.ended_at is not None:
            raise refused("visit_ended", "This visit has ended.")
        try:
            placement = await place_visit(self.app, visit_id)  # the first join places it
        except TryAgain as exc:
            raise refused(exc.code, exc.message) from None
        if placement.node_id != self.app[NODE].id:
            # The visit's media run on another node: the page connects there (its path).
            raise refused(
                WRONG_NODE,
                "This visit runs on another server; reconnecting there.",
                **placement_public(placement),
            )
        await self._take_seat(sid, who, request)

    async def _take_seat(self, sid: str, who: Seat, request: web.Request) -> None:
        """The socket becomes this attendee's: rooms, chat so far, the others told."""
        visit_id = who.visit.id
        self._attendees[sid] = who
        staff = await optional_staff(request)  # the request keeps the answer: no second lookup
        if who.role == visits.PROVIDER and staff is not None:
            self.remember_session(sid, staff.claims)
        await self.enter_room(sid, visit_room(visit_id))
        if who.role == visits.PROVIDER:
            await self.enter_room(sid, visit_provider_room(visit_id))
        async with self.db.session() as session:
            history = await visits.messages(session, visit_id)
        await self.emit(
            "joined",
            {
                "role": who.role,
                "participant": who.participant_id,
                "messages": [visits.message_public(m) for m in history],
            },
            to=sid,
        )
        if who.role == visits.PROVIDER:
            await guests_changed(self.app, visit_id)
        await self._push_people(visit_id)
        await self._audit(who, request, "visit.join")

    async def _connect_waiting(self, sid: str, request: web.Request, auth: Any) -> None:
        """A checked-in patient's waiting page, to warm up its connection to the relay."""
        if not self.settings.warm_waiting:
            raise refused("warm_off", "This clinic connects the video after the admit.")
        try:
            parse_model(WaitingConnectIn, auth)
            async with self.db.session() as session:
                appointment, patient = await warm.waiting_patient(session, patient_session(request))
        except DomainError as exc:
            raise refused(exc.code, exc.message) from None
        self._waiting[sid] = warm.patient_seat(appointment.id, patient.id, request)

    async def _connect_provider_lobby(self, sid: str, request: web.Request, auth: Any) -> None:
        """A provider's queue page, to warm up their connection before they admit anyone."""
        if not self.settings.warm_waiting:
            raise refused("warm_off", "This clinic connects the video after the admit.")
        try:
            parse_model(ProviderLobbyIn, auth)
            staff = await optional_staff(request)
            seat = warm.provider_seat(staff, request)
        except DomainError as exc:
            raise refused(exc.code, exc.message) from None
        assert staff is not None
        self.remember_session(sid, staff.claims)  # a sign-out closes it too
        self._waiting[sid] = seat

    async def on_ice_servers(self, sid: str, data: Any = None) -> dict[str, Any]:
        """STUN/TURN for a waiting page's warm connection (the visit page asks over HTTP)."""
        seat = self._waiting_seat(sid)
        return {
            "ice_servers": browser_ice_servers(self.settings, seat.turn_user),
            "ice_transport_policy": ice_transport_policy(self.settings),
        }

    async def on_enter(self, sid: str, data: Any) -> dict[str, Any]:
        """An admitted patient's waiting page, or the admitting provider's queue page, enters
        the visit with its warm connection: only into a visit where it is that same person."""
        seat = self._waiting_seat(sid)
        visit_id = parse_model(EnterIn, data).visit_id
        try:
            who = Seat.of(await attendee_of(seat.request, visit_id), seat.request)
        except DomainError as exc:
            staff = await optional_staff(seat.request)
            await record(
                seat.request,
                staff_actor(seat.request, staff) if staff else anonymous_actor(seat.request),
                "visit.join",
                outcome=audit.DENIED,
                object_type="visit",
                object_id=visit_id,
                detail=exc.code,
            )
            raise
        if who.role != seat.role or who.person_id != seat.person_id:
            raise Conflict("This connection waits for another visit.")
        if who.visit.ended_at is not None:  # the visit as attendee_of just read it
            raise visits.VisitEnded("This visit has ended.")
        # Placed here if it can be (this node holds the warm connection), so it moves as is.
        placement = await place_visit(self.app, visit_id, prefer_here=True)
        if placement.node_id != self.app[NODE].id:
            # This warm connection waits on another node than the visit's: the page connects
            # to the visit's node the usual way (a new peer connection there).
            raise WrongNode(placement)
        del self._waiting[sid]
        holder = self._lobby_holders.pop(seat.lobby, None)
        if holder not in (None, sid):
            self._lobby_holders[seat.lobby] = holder  # another tab holds it: not ours to move
        try:
            moved = holder == sid and await self.relay.move(
                seat.lobby, seat.participant_id, str(visit_id)
            )
        except RoomFull:
            raise guests.VisitFull(
                f"This visit already has {MAX_PARTICIPANTS} people in it, the most it can hold."
            ) from None
        if moved:
            # Media flows from here: every page, this one too, learns at once which
            # transceiver shows whom; the bookkeeping (attendance, chat so far, audit) follows.
            self._attendees[sid] = who
            previous = self._hold(sid, who)
            await self._push_layouts(visit_id)
            await self._after_offer(sid, who, previous)
        await self._take_seat(sid, who, seat.request)
        participant = self.relay.participant(str(visit_id), who.participant_id)
        layout = participant.layout() if moved and participant else {}
        return {"moved": moved, "layout": layout}

    def _waiting_seat(self, sid: str) -> warm.WaitingSeat:
        seat = self._waiting.get(sid)
        if seat is None:
            raise Conflict("This connection is not waiting for a visit.")
        return seat

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        seat = self._waiting.pop(sid, None)
        if seat is not None:
            if self._lobby_holders.get(seat.lobby) == sid:
                del self._lobby_holders[seat.lobby]
                await self.relay.leave(seat.lobby, seat.participant_id)
            return
        who = self._attendees.pop(sid, None)
        if who is None:
            return
        key = (who.visit.id, who.participant_id)
        if self._offered.get(key) == sid:
            del self._offered[key]
            await self.relay.leave(str(who.visit.id), who.participant_id)
            await self._record_left(who)
            await self._push_layouts(who.visit.id)
        await self._push_people(who.visit.id)

    async def _record_left(self, who: visits.Attendee) -> None:
        """Close the attendee's stretch of presence, as far as the database lets us."""
        # A disconnect during shutdown may find the database gone; the end closes open stretches.
        try:
            async with self.db.session() as session:
                await attendance.left(session, who)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("could not record that %s left visit %s: %s", who.role, who.visit.id, exc)

    async def on_offer(self, sid: str, data: Any) -> dict[str, Any]:
        seat = self._waiting.get(sid)
        if seat is not None:
            check_offer(self, seat.limits_key, seat.participant_id, data)
            return await self._warm_offer(sid, seat, parse_model(OfferIn, data))
        who = self._attendee(sid)
        check_offer(self, who.visit.id, who.participant_id, data)
        offer_in = parse_model(OfferIn, data)
        async with self.db.session() as session:
            await visits.require_open(session, who.visit.id)
        try:
            answer = await self.relay.join(
                str(who.visit.id), who.participant_id, RTCSessionDescription(offer_in.sdp, "offer")
            )
        except RoomFull:
            raise guests.VisitFull(
                f"This visit already has {MAX_PARTICIPANTS} people in it, the most it "
                "can hold. Ask the provider to let you in when someone has left."
            ) from None
        except RelayError as exc:
            raise Conflict(str(exc)) from None
        except ValueError as exc:
            raise InvalidInput(
                f"This offer cannot be used: {exc}", fields={"sdp": str(exc)}
            ) from None
        await self._offered_by(sid, who)
        await self._push_layouts(who.visit.id, skip=sid)
        # Read last, with no await before the acknowledgement goes: a "layout" sent to this
        # page meanwhile (someone else joined) is never newer than the one answered here.
        participant = self.relay.participant(str(who.visit.id), who.participant_id)
        layout = participant.layout() if participant else {}
        return {"sdp": answer.sdp, "type": answer.type, "layout": layout}

    async def _warm_offer(
        self, sid: str, seat: warm.WaitingSeat, offer_in: OfferIn
    ) -> dict[str, Any]:
        """A waiting page's (or queue page's) connection: answered, held alone; nothing
        reaches it yet."""
        try:
            answer = await self.relay.join(
                seat.lobby, seat.participant_id, RTCSessionDescription(offer_in.sdp, "offer")
            )
        except ValueError as exc:
            raise InvalidInput(
                f"This offer cannot be used: {exc}", fields={"sdp": str(exc)}
            ) from None
        previous = self._lobby_holders.get(seat.lobby)
        self._lobby_holders[seat.lobby] = sid
        if previous is not None and previous != sid:
            # The person's other tab lost its warm connection to this one: it says so and
            # opens the visit page at the admit instead of taking the connection back.
            await self.emit("replaced", {}, to=previous)
        return {"sdp": answer.sdp, "type": answer.type, "layout": {}}

    async def _offered_by(self, sid: str, who: Seat) -> None:
        """`sid` holds the attendee's connection to the relay now (after an offer or a move)."""
        await self._after_offer(sid, who, self._hold(sid, who))

    def _hold(self, sid: str, who: Seat) -> str | None:
        """Note `sid` as the holder of the attendee's connection; the one that held it before."""
        key = (who.visit.id, who.participant_id)
        previous = self._offered.get(key)
        self._offered[key] = sid
        return previous

    async def _after_offer(self, sid: str, who: Seat, previous: str | None) -> None:
        if (who.visit.id, who.participant_id) in self._audio_only:
            await self.relay.receive_video(str(who.visit.id), who.participant_id, False)
        async with self.db.session() as session:
            await attendance.joined(session, who)
        if previous is not None and previous != sid:
            # The same person in another tab: the relay dropped that connection; say so there
            # instead of letting both tabs take the place from each other in turn.
            await self.emit("replaced", {}, to=previous)

    async def on_chat(self, sid: str, data: Any) -> dict[str, Any]:
        who = self._attendee(sid)
        chat_in = parse_model(ChatIn, data)
        await check_chat(self.app, who)
        async with self.db.session() as session:
            message = await visits.add_message(session, who, chat_in.text)
        public = visits.message_public(message)
        await self.emit("chat", public, room=visit_room(who.visit.id))
        await self._audit(who, None, "visit.chat")
        return {"ok": True, "id": public["id"]}

    async def on_end(self, sid: str, data: Any = None) -> dict[str, Any]:
        who = self._attendee(sid)
        async with self.db.session() as session:
            visit = await visits.end_visit(session, who)
            await attendance.close_all(session, visit.id)
        await self.relay.end(str(visit.id))
        for key in [k for k in self._offered if k[0] == visit.id]:
            del self._offered[key]
        self._audio_only = {k for k in self._audio_only if k[0] != visit.id}
        self._media_state = {k: v for k, v in self._media_state.items() if k[0] != visit.id}
        assert visit.ended_at is not None
        ended_at = visit.ended_at.isoformat()
        await self.emit("ended", {"ended_at": ended_at}, room=visit_room(visit.id))
        await self._audit(who, None, "visit.end")
        return {"ok": True, "ended_at": ended_at}

    async def on_audio_only(self, sid: str, data: Any) -> dict[str, Any]:
        """Switch to audio only (or back): the relay stops sending this participant video."""
        who = self._attendee(sid)
        audio_only = parse_model(AudioOnlyIn, data).on
        key = (who.visit.id, who.participant_id)
        if audio_only:
            self._audio_only.add(key)
        else:
            self._audio_only.discard(key)
        await self.relay.receive_video(str(who.visit.id), who.participant_id, not audio_only)
        await self._push_people(who.visit.id)
        return {"ok": True, "audio_only": audio_only}

    async def on_media_state(self, sid: str, data: Any) -> dict[str, Any]:
        """The attendee's microphone or camera went on or off: the others' captions say so."""
        who = self._attendee(sid)
        state = parse_model(MediaStateIn, data)
        self._media_state[(who.visit.id, who.participant_id)] = state
        await self._push_people(who.visit.id)
        return {"ok": True}

    async def on_admit_guest(self, sid: str, data: Any) -> dict[str, Any]:
        """The provider lets a waiting guest in; their waiting page moves on to the visit."""
        who = self._attendee(sid)
        guest_in = parse_model(GuestIn, data)
        async with self.db.session() as session:
            guest = await guests.admit(session, who, guest_in.guest_id)
        url = f"/visit/{who.visit.id}"
        await self.server.emit(
            "admitted",
            {"visit_id": str(who.visit.id), "url": url},
            room=guest_room(guest.id),
            namespace=WAITING_NAMESPACE,
        )
        await self._audit(who, None, "visit.guest_admit", detail=str(guest.id))
        await guests_changed(self.app, who.visit.id)
        return {"ok": True, "guest": guests.guest_public(guest)}

    async def on_remove_guest(self, sid: str, data: Any) -> dict[str, Any]:
        """The provider withdraws a guest: their link stops working and they leave the visit."""
        who = self._attendee(sid)
        guest_in = parse_model(GuestIn, data)
        async with self.db.session() as session:
            guest = await guests.remove(session, who, guest_in.guest_id)
        await self.server.emit(
            "released",
            {"reason": "removed", "message": "The provider has withdrawn this invitation."},
            room=guest_room(guest.id),
            namespace=WAITING_NAMESPACE,
        )
        for guest_sid, attendee in list(self._attendees.items()):
            if attendee.visit.id == who.visit.id and attendee.person_id == guest.id:
                await self.emit("removed", {}, to=guest_sid)
                await self.disconnect(guest_sid)
        await self._audit(who, None, "visit.guest_remove", detail=str(guest.id))
        await guests_changed(self.app, who.visit.id)
        return {"ok": True, "guest": guests.guest_public(guest)}

    def _attendee(self, sid: str) -> Seat:
        who = self._attendees.get(sid)
        if who is None:
            raise Conflict("This connection has not joined a visit.")
        return who

    async def _push_layouts(self, visit_id: uuid.UUID, *, skip: str | None = None) -> None:
        """Tell everyone (on this process) which transceiver now shows whom."""
        for (vid, participant_id), sid in list(self._offered.items()):
            if vid != visit_id or sid == skip:
                continue
            participant = self.relay.participant(str(visit_id), participant_id)
            await self.emit("layout", participant.layout() if participant else {}, to=sid)

    async def _push_people(self, visit_id: uuid.UUID) -> None:
        """Names for the relay's participant ids, so pages can caption each picture."""
        people = {}
        for who in self._attendees.values():
            if who.visit.id != visit_id:
                continue
            key = (visit_id, who.participant_id)
            media = self._media_state.get(key)
            people[who.participant_id] = {
                "name": who.name,
                "role": who.role,
                "audio_only": key in self._audio_only,
                "microphone": media.microphone if media else True,
                "camera": media.camera if media else True,
            }
        await self.emit("people", people, room=visit_room(visit_id))

    async def _audit(
        self,
        who: Seat,
        request: web.Request | None,
        action: str,
        detail: str | None = None,
    ) -> None:
        """What an attendee did in the visit; joining (`request`) records their address too."""
        address = client_addr(request) if request is not None else None
        await record(
            who.request,
            who.actor(address),
            action,
            object_type="visit",
            object_id=who.visit.id,
            patient_id=who.visit.patient_id,
            detail=detail,
        )
