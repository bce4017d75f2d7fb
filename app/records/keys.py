"""What the patient record keeps on the application object."""

from __future__ import annotations

from aiohttp import web

from app.records.crypto import Keyring

NOTE_KEYRING = web.AppKey("note_keyring", Keyring)
