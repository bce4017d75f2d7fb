"""The OpenAPI fragment of scheduling."""

from __future__ import annotations

from app.web.openapi import Spec, operation, path_param, ref, schemas_of
from scheduling.merge_routes import MergeIn
from scheduling.schemas import (
    AppointmentDetail,
    AppointmentPublic,
    AppointmentTypeIn,
    AppointmentTypePublic,
    BookedPublic,
    BookIn,
    CancelIn,
    ExceptionIn,
    ExceptionPublic,
    MessagePublic,
    PatientCreate,
    PatientPublic,
    RescheduleIn,
    ScheduleIn,
    SchedulePublic,
    SlotsPublic,
    TextConsentIn,
    TextConsentPublic,
    TroublePublic,
    TroublesPublic,
    WarningPublic,
)

PROVIDER = path_param("provider_id", "A provider of the caller's clinic")
PATIENT = path_param("patient_id", "A patient of the caller's clinic")
APPOINTMENT = path_param("appointment_id", "An appointment of the caller's clinic")


def _query(name: str, schema: Spec, *, required: bool = False, description: str = "") -> Spec:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


DATE = {"type": "string", "format": "date"}
UUID = {"type": "string", "format": "uuid"}
TZ = _query("tz", {"type": "string"}, description="IANA zone to show local times in")
RANGE = [
    _query("from", DATE, required=True, description="First local day"),
    _query("to", DATE, required=True, description="Last local day (at most 62 days on)"),
]

PATHS: Spec = {
    "/api/patients": {
        "get": operation(
            "Find patients by name words and/or date of birth (admin, scheduler); audited",
            tag="patients",
            ok={"type": "array", "items": ref("PatientPublic")},
            errors=(400, 401, 403),
            params=[
                _query("q", {"type": "string"}, description="Start of given or family name"),
                _query("birth_date", DATE),
                _query("limit", {"type": "integer", "maximum": 100}),
            ],
        ),
        "post": operation(
            "Create a patient (admin, scheduler)",
            tag="patients",
            body=ref("PatientCreate"),
            ok=ref("PatientPublic"),
            status="201",
            errors=(400, 401, 403, 413),
        ),
    },
    "/api/patients/{patient_id}": {
        "get": operation(
            "One patient (admin, scheduler); audited",
            tag="patients",
            ok=ref("PatientPublic"),
            errors=(401, 403, 404),
            params=[PATIENT],
        )
    },
    "/api/patients/{patient_id}/text-consent": {
        "get": operation(
            "The patient's consent to text messages (admin, scheduler); audited",
            tag="patients",
            ok=ref("TextConsentPublic"),
            errors=(401, 403, 404),
            params=[PATIENT],
        ),
        "put": operation(
            "Record that the patient agreed to text messages on their number, or withdraw it "
            "(admin, scheduler); audited",
            tag="patients",
            body=ref("TextConsentIn"),
            ok=ref("TextConsentPublic"),
            errors=(400, 401, 403, 404, 413),
            params=[PATIENT],
        ),
    },
    "/api/providers": {
        "get": operation(
            "Providers of the caller's clinic and their calendar zones",
            tag="calendars",
            ok={"type": "array", "items": {"type": "object"}},
        )
    },
    "/api/providers/{provider_id}/schedule": {
        "get": operation(
            "A provider's zone, limits, weekly rules and date exceptions (providers: own)",
            tag="calendars",
            ok=ref("SchedulePublic"),
            errors=(401, 403, 404),
            params=[PROVIDER],
        ),
        "put": operation(
            "Replace a provider's zone, limits and weekly rules (admin, scheduler)",
            tag="calendars",
            body=ref("ScheduleIn"),
            ok=ref("SchedulePublic"),
            errors=(400, 401, 403, 404),
            params=[PROVIDER],
        ),
    },
    "/api/providers/{provider_id}/exceptions": {
        "post": operation(
            "Add time off or extra hours on one date (admin, scheduler)",
            tag="calendars",
            body=ref("ExceptionIn"),
            ok=ref("ExceptionPublic"),
            status="201",
            errors=(400, 401, 403, 404),
            params=[PROVIDER],
        )
    },
    "/api/providers/{provider_id}/exceptions/{exception_id}": {
        "delete": operation(
            "Remove a date exception (admin, scheduler)",
            tag="calendars",
            status="204",
            errors=(401, 403, 404),
            params=[PROVIDER, path_param("exception_id", "An exception of that calendar")],
        )
    },
    "/api/providers/{provider_id}/slots": {
        "get": operation(
            "Free slots of a provider for local days from..to (providers: own)",
            tag="calendars",
            ok=ref("SlotsPublic"),
            errors=(400, 401, 403, 404),
            params=[
                PROVIDER,
                _query("appointment_type_id", UUID, required=True),
                *RANGE,
                TZ,
            ],
        ),
    },
    "/api/appointment-types": {
        "get": operation(
            "Appointment types of the clinic",
            tag="calendars",
            ok={"type": "array", "items": ref("AppointmentTypePublic")},
        ),
        "post": operation(
            "Create an appointment type (admin, scheduler)",
            tag="calendars",
            body=ref("AppointmentTypeIn"),
            ok=ref("AppointmentTypePublic"),
            status="201",
            errors=(400, 401, 403),
        ),
    },
    "/api/appointments": {
        "get": operation(
            "Appointments starting on local days from..to (providers: own); audited",
            tag="appointments",
            ok={"type": "array", "items": ref("AppointmentPublic")},
            errors=(400, 401, 403),
            params=[_query("provider_id", UUID), *RANGE, TZ],
        ),
        "post": operation(
            "Book a slot; the link goes by email and, with consent to texts, by text message; "
            "409 when the provider's time is taken",
            tag="appointments",
            body=ref("BookIn"),
            ok=ref("BookedPublic"),
            status="201",
            errors=(400, 401, 403, 404, 409),
        ),
    },
    "/api/appointments/{appointment_id}": {
        "get": operation(
            "One appointment with the patient's join link, warnings and every email's delivery "
            "(providers: own); audited",
            tag="appointments",
            ok=ref("AppointmentDetail"),
            errors=(401, 403, 404),
            params=[APPOINTMENT],
        )
    },
    "/api/appointments/{appointment_id}/reschedule": {
        "post": operation(
            "Move to a new start; the old join link stops working",
            tag="appointments",
            body=ref("RescheduleIn"),
            ok=ref("BookedPublic"),
            errors=(400, 401, 403, 404, 409),
            params=[APPOINTMENT],
        )
    },
    "/api/appointments/{appointment_id}/cancel": {
        "post": operation(
            "Cancel with a reason; the join link stops working",
            tag="appointments",
            body=ref("CancelIn"),
            ok=ref("AppointmentPublic"),
            errors=(400, 401, 403, 404, 409),
            params=[APPOINTMENT],
        )
    },
    "/api/appointments/{appointment_id}/no-show": {
        "post": operation(
            "Mark a started appointment no-show (providers: own)",
            tag="appointments",
            ok=ref("AppointmentPublic"),
            errors=(401, 403, 404, 409),
            params=[APPOINTMENT],
        )
    },
    "/api/appointments/{appointment_id}/resend-link": {
        "post": operation(
            "Issue a new join link (the old one, long or short, stops working) and email it when "
            "the patient has an address, text it when they agreed to texts (admin, scheduler; "
            "providers: own); audited",
            tag="appointments",
            ok=ref("BookedPublic"),
            errors=(401, 403, 404, 409),
            params=[APPOINTMENT],
        )
    },
    "/api/messages/undelivered": {
        "get": operation(
            "The clinic's emails that failed or are being retried (admin, scheduler); audited",
            tag="messages",
            ok=ref("TroublesPublic"),
            errors=(401, 403),
        )
    },
    "/api/messages/{message_id}/retry": {
        "post": operation(
            "Send a failed email again now, with a fresh count of attempts (admin); audited",
            tag="messages",
            ok=ref("MessagePublic"),
            errors=(401, 403, 404, 409),
            params=[
                path_param("message_id", "An email about an appointment of the caller's clinic")
            ],
        )
    },
}

SCHEMAS = schemas_of(
    PatientCreate,
    PatientPublic,
    ScheduleIn,
    SchedulePublic,
    ExceptionIn,
    ExceptionPublic,
    AppointmentTypeIn,
    AppointmentTypePublic,
    SlotsPublic,
    BookIn,
    BookedPublic,
    AppointmentPublic,
    AppointmentDetail,
    WarningPublic,
    MessagePublic,
    TroublePublic,
    TroublesPublic,
    RescheduleIn,
    CancelIn,
    TextConsentIn,
    TextConsentPublic,
)


PERSON: Spec = {"type": "object", "description": "A patient's demographics"}
PATIENT_ID = path_param("patient_id", "A patient of the caller's clinic")
PATHS |= {
    "/api/patient-reviews": {
        "get": operation(
            "Walk-in records flagged for review (same name and date of birth as another record, "
            "another contact), each with the records it may duplicate (admin, scheduler; "
            "audited)",
            tag="patients",
            ok={
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "patient": PERSON,
                        "candidates": {"type": "array", "items": PERSON},
                    },
                },
            },
        )
    },
    "/api/patients/{patient_id}/merge": {
        "post": operation(
            "Merge this record into another of the clinic: appointments, visits, notes move "
            "there; this one is kept, marked merged (admin, scheduler; audited)",
            tag="patients",
            body=ref("MergeIn"),
            params=[PATIENT_ID],
            ok={"type": "object", "properties": {"merged": PERSON, "into": PERSON}},
            errors=(400, 401, 403, 404, 409),
        )
    },
    "/api/patients/{patient_id}/keep-separate": {
        "post": operation(
            "A flagged record is another person: clear its flag (admin, scheduler; audited)",
            tag="patients",
            params=[PATIENT_ID],
            ok=PERSON,
            errors=(401, 403, 404),
        )
    },
}
SCHEMAS |= schemas_of(MergeIn)
