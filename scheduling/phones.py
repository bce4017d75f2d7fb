"""Patients' phone numbers: checked with libphonenumber's metadata and kept in E.164
(`+12125550142`), the form SMS providers take.

A number written without the country code is read as one of the clinic's country, taken from
the clinic's own phone number; a clinic without one needs numbers with `+` and the country code.
"""

from __future__ import annotations

import phonenumbers

from app.core.errors import InvalidInput

EXAMPLE = "+1 212 555 0142"


def region_of(clinic_phone: str | None) -> str | None:
    """The country (ISO 3166 alpha-2) of the clinic's phone number, when it names one."""
    if not clinic_phone:
        return None
    try:
        number = phonenumbers.parse(clinic_phone, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    return region if region and region != "ZZ" else None


def e164(raw: str, region: str | None = None) -> str | None:
    """The number in E.164, or None when it is not a valid phone number."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalized(raw: str | None, region: str | None, *, field: str = "phone") -> str | None:
    """A patient's number as given to the API, in E.164; a clear 400 when it is not one."""
    if raw is None or not raw.strip():
        return None
    number = e164(raw, region)
    if number is None:
        hint = (
            f"give a valid number, with + and the country code (e.g. {EXAMPLE})"
            if region is None
            else f"give a valid number of the clinic's country ({region}) or with + and the "
            f"country code (e.g. {EXAMPLE})"
        )
        raise InvalidInput(f"That phone number is not valid: {hint}.", fields={field: hint})
    return number
