"""Command line: serve, migrate, seed-demo, create-user, audit-verify, audit-checkpoint,
rotate-note-key, new-note-key, new-audit-key, nodes, drain."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import json
import sys
from collections.abc import Sequence

from aiohttp import web
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlmodel import select

from app.accounts import service as accounts
from app.accounts.schemas import UserCreate
from app.core import audit, checkpoints
from app.core.config import NOTE_KEY_ID, Settings, SettingsError, load_settings, new_note_key
from app.core.db import Database
from app.core.errors import DomainError
from app.core.logs import configure_logging
from app.core.models import Clinic, Role
from app.demo import DEMO_ACCOUNTS, DEMO_CLINIC, seed_demo
from app.main import create_app
from app.migrations import upgrade
from app.records.crypto import DecryptionError, Keyring
from app.records.rotation import rotate_note_key
from app.web.access_log import AccessLogger
from app.web.api import field_errors
from app.web.nodes import NodeRegistry, drain_on_sigterm
from scheduling.demo import seed_demo_visit
from scheduling.links import current_link
from scheduling.mail import local_text


async def _with_db(settings: Settings, migrate: bool = True) -> Database:
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database.from_settings(settings)
    if migrate:
        await upgrade(db)
    return db


async def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    db = await _with_db(settings)
    await db.dispose()
    print("database is at the newest schema")
    return 0


async def cmd_seed_demo(settings: Settings, args: argparse.Namespace) -> int:
    if settings.env == "production" and not args.force:
        print("refusing to add demo accounts in production (use --force if you mean it)")
        return 2
    db = await _with_db(settings)
    try:
        created = await seed_demo(db)
        async with db.session() as session:
            clinic = (await session.exec(select(Clinic).where(Clinic.name == DEMO_CLINIC))).one()
            visit = await seed_demo_visit(session, clinic_id=clinic.id)
            # The short link the emails carry, not the long signed one.
            link = (
                None if visit is None else await current_link(session, settings, visit.appointment)
            )
            await session.commit()
    finally:
        await db.dispose()
    if created:
        print("Demo accounts created (passwords are shown this once):")
        for account in created:
            print(f"  {account.role.value:<10} {account.email:<34} {account.password}")
    else:
        print("Demo accounts already present; nothing added.")
    print(
        "Admins sign in with two-step sign-in (TOTP): at the first sign-in as "
        f"{DEMO_ACCOUNTS[0].email} the page shows a QR code; scan it with an authenticator "
        "app (or type the key it shows) and keep the recovery codes."
    )
    if visit is not None:
        patient = visit.patient
        print(
            f"Demo visit: {patient.given_name} {patient.family_name} (born "
            f"{patient.birth_date.isoformat()}) with {visit.provider.full_name} on "
            f"{local_text(visit.appointment.start_at, visit.timezone)}, "
            f"{visit.appointment.start_at:%H:%M} UTC; the patient's link "
            f"(opens {settings.join_opens_minutes} minutes before):\n  "
            f"{link}"
        )
    return 0


async def cmd_create_user(settings: Settings, args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password (12 characters or more): ")
    try:
        user_in = UserCreate(
            email=args.email, full_name=args.name, role=Role(args.role), password=password
        )
    except ValidationError as exc:
        for name, msg in field_errors(exc).items():
            print(f"{name}: {msg}", file=sys.stderr)
        return 2
    if args.clinic_phone is not None and len(args.clinic_phone.strip()) > 40:
        print("--clinic-phone: at most 40 characters", file=sys.stderr)
        return 2
    db = await _with_db(settings)
    try:
        async with db.session() as session:
            clinic = (await session.exec(select(Clinic).where(Clinic.name == args.clinic))).first()
            if clinic is None:
                clinic = Clinic(name=args.clinic, timezone=args.clinic_timezone)
                session.add(clinic)
                await session.commit()
                print(f"created clinic {clinic.name!r}")
            if args.clinic_phone is not None:
                clinic.phone = args.clinic_phone.strip() or None
                session.add(clinic)
                await session.commit()
            user = await accounts.create_user(session, clinic_id=clinic.id, user_in=user_in)
        await audit.record(
            db,
            action="user.create",
            outcome=audit.SUCCESS,
            actor=audit.Actor(
                id="cli", role="operator", clinic_id=str(clinic.id), client_addr=None
            ),
            object_type="staff_user",
            object_id=user.id,
        )
    except DomainError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    print(f"created {user.role.value} {user.email} in {clinic.name!r}")
    if user.role == Role.ADMIN:
        print("admins use two-step sign-in: the first sign-in sets it up (an authenticator app)")
    return 0


async def cmd_audit_verify(settings: Settings, _args: argparse.Namespace) -> int:
    path = settings.checkpoint_path
    db = await _with_db(settings, migrate=False)
    try:
        assert db.audit_keys is not None
        try:
            published = checkpoints.read(path, db.audit_keys)
        except checkpoints.CheckpointError as exc:
            print(f"audit checkpoints BROKEN: {exc}")
            return 1
        report = await audit.verify_chain(db, checkpoints=published)
    finally:
        await db.dispose()
    if not report.ok:
        print(
            f"audit chain BROKEN at event {report.broken_at}: {report.reason} "
            f"({report.events} events before it are intact)"
        )
        return 1
    print(f"audit chain intact: {report.events} events, each MAC checked")
    if report.legacy:
        print(
            f"  the first {report.legacy} events predate the keyed chain: checked by their plain "
            "SHA-256 only (anyone with database access could have recomputed those)"
        )
    if report.checkpoint is not None:
        print(
            f"  matches all {report.checkpoints} published checkpoints; the newest, of "
            f"{report.checkpoint.at}, ends at event {report.checkpoint.event_id}"
        )
    else:
        print(
            f"  no checkpoint published yet in {path}: events removed from the end could "
            "not be noticed (python -m app audit-checkpoint publishes one)"
        )
    return 0


async def cmd_audit_checkpoint(settings: Settings, _args: argparse.Namespace) -> int:
    db = await _with_db(settings, migrate=False)
    try:
        checkpoint = await checkpoints.publish(db, settings.checkpoint_path)
    finally:
        await db.dispose()
    if checkpoint is None:
        print("the audit trail is empty: nothing to publish")
        return 0
    print(f"published to {settings.checkpoint_path}:")
    print(checkpoint.line())
    return 0


async def cmd_rotate_note_key(settings: Settings, _args: argparse.Namespace) -> int:
    keyring = Keyring.from_settings(settings)
    db = await _with_db(settings)
    try:
        report = await rotate_note_key(db, keyring)
    except DecryptionError as exc:
        print(
            f"rotation stopped: {exc}; keep every old key listed until rotation is done",
            file=sys.stderr,
        )
        return 1
    finally:
        await db.dispose()
    done = (
        f"{report.notes} notes, {report.addenda} addenda, {report.chat_lines} visit chat lines, "
        f"{report.waiting_messages} waiting-room messages, "
        f"{report.mfa_secrets} two-step sign-in secrets, "
        f"{report.intake_answers} intake answer sets "
        f"and {report.attachments} visit attachments"
    )
    await _audit_rotation(settings, f"key {keyring.active}: {done}")
    print(f"re-encrypted {done} under key {keyring.active!r}; older keys may now be removed")
    return 0


async def _audit_rotation(settings: Settings, detail: str) -> None:
    db = Database.from_settings(settings)
    try:
        await audit.record(
            db,
            action="note.rekey",
            outcome=audit.SUCCESS,
            actor=audit.Actor(id="cli", role="operator", clinic_id=None, client_addr=None),
            object_type="consult_note",
            detail=detail,
        )
    finally:
        await db.dispose()


def cmd_new_note_key(args: argparse.Namespace) -> int:
    """Needs no settings: production cannot start until it has a key (also for audit keys)."""
    if args.key_id is not None and not NOTE_KEY_ID.match(args.key_id):
        print("--key-id: 1-32 characters of A-Z a-z 0-9 _ . -", file=sys.stderr)
        return 2
    print(new_note_key(args.key_id))
    return 0


SHUTDOWN_GRACE_SECONDS = 5.0


#: The garbage collector's youngest generation is collected after this many allocations, not
#: 700: objects a queue rebuild holds across its awaits then die young instead of being promoted
#: to the oldest generation, whose full collections pause the event loop.
GC_YOUNG_THRESHOLD = 50_000


async def _tune_garbage_collector(_app: web.Application) -> None:
    """Move what importing and starting allocated (modules, schemas, the app; over a million
    objects) out of the garbage collector's view, and collect the young generation less often.
    Under a thousand waiting patients, full collections had paused the event loop for 200-290 ms
    every second or two, and the patients' places waited behind them."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 10)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    settings = settings.serving_at(args.host or settings.host, args.port or settings.port)
    host, port = settings.host, settings.port

    async def migrated_app() -> web.Application:
        db = await _with_db(settings)
        await db.dispose()
        app = create_app(settings)
        drain_on_sigterm(app)
        app.on_startup.append(_tune_garbage_collector)
        return app

    web.run_app(
        migrated_app(),
        host=host,
        port=port,
        access_log_class=AccessLogger,
        # After a drain (or on SIGINT), open sockets get this long before they are closed;
        # aiohttp's default (60 s) would outlast a container's stop grace period.
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        print=lambda _msg: print(
            f"OpenConsult on http://{host}:{port} ({settings.env})", flush=True
        ),
    )
    return 0


async def cmd_nodes(settings: Settings, _args: argparse.Namespace) -> int:
    """The nodes in the registry (Redis) and their load."""
    if not settings.redis_url:
        print("no REDIS_URL: one process serves everything", file=sys.stderr)
        return 2
    redis = Redis.from_url(settings.redis_url)
    try:
        for node in await NodeRegistry(redis, settings.redis_key_prefix).nodes():
            print(json.dumps(node.public()))
    finally:
        await redis.aclose()
    return 0


async def cmd_drain(settings: Settings, args: argparse.Namespace) -> int:
    """Ask a node to drain (it sees the request at its next beat, within ~2 s)."""
    if not settings.redis_url:
        print("no REDIS_URL: stop the process with SIGTERM to drain it", file=sys.stderr)
        return 2
    redis = Redis.from_url(settings.redis_url)
    try:
        registry = NodeRegistry(redis, settings.redis_key_prefix)
        if args.node not in {node.id for node in await registry.nodes()}:
            print(f"no live node {args.node!r} (python -m app nodes lists them)", file=sys.stderr)
            return 1
        await registry.request_drain(args.node)
    finally:
        await redis.aclose()
    print(f"node {args.node} asked to drain")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="apply migrations and run the web server")
    serve.add_argument("--host", help="address to bind (default OPENCONSULT_HOST)")
    serve.add_argument("--port", type=int, help="port (default OPENCONSULT_PORT)")
    sub.add_parser("migrate", help="apply database migrations")
    seed = sub.add_parser("seed-demo", help="add the demo clinic, staff and patients")
    seed.add_argument("--force", action="store_true", help="allow in production")
    create = sub.add_parser("create-user", help="create a staff account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--clinic", required=True, help="clinic name (created if missing)")
    create.add_argument("--clinic-timezone", default="UTC")
    create.add_argument(
        "--clinic-phone",
        help="the number patients call (shown on a locked join link); sets it on the clinic",
    )
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    sub.add_parser(
        "audit-verify",
        help="check every audit event's MAC, the chain, and the published checkpoints",
    )
    sub.add_parser(
        "audit-checkpoint",
        help="publish the audit chain's head now (checkpoint file and log line)",
    )
    sub.add_parser(
        "rotate-note-key",
        help="re-encrypt every note, addendum, visit chat line and waiting-room message under "
        "OPENCONSULT_NOTE_ACTIVE_KEY",
    )
    new_key = sub.add_parser("new-note-key", help="print a fresh 'keyid:base64key' entry")
    new_key.add_argument("--key-id", help="id of the key (default: random)")
    new_audit_key = sub.add_parser(
        "new-audit-key", help="print a fresh 'keyid:base64key' entry for OPENCONSULT_AUDIT_KEYS"
    )
    new_audit_key.add_argument("--key-id", help="id of the key (default: random)")
    sub.add_parser("nodes", help="list the live nodes (with REDIS_URL)")
    drain = sub.add_parser(
        "drain", help="drain a node: no new visits, exit once its live visits end"
    )
    drain.add_argument("--node", required=True, help="the node's id (python -m app nodes)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("new-note-key", "new-audit-key"):
        return cmd_new_note_key(args)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "serve":
        return cmd_serve(settings, args)
    commands = {
        "migrate": cmd_migrate,
        "seed-demo": cmd_seed_demo,
        "create-user": cmd_create_user,
        "audit-verify": cmd_audit_verify,
        "audit-checkpoint": cmd_audit_checkpoint,
        "rotate-note-key": cmd_rotate_note_key,
        "nodes": cmd_nodes,
        "drain": cmd_drain,
    }
    return asyncio.run(commands[args.command](settings, args))


if __name__ == "__main__":
    sys.exit(main())
