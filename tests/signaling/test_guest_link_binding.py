"""A guest link belongs to the first browser that gives a name with it: someone else who gets
hold of the link (forwarded, shoulder-surfed, from a shared screen) cannot replay it, before or
after the guest was admitted (issue 15)."""

from __future__ import annotations

from app.core.models import Clinic
from tests.signaling.conftest import WaitingFactory, admit_patient, refused_connection
from tests.signaling.test_guests import guest_checks_in, invite

IN_USE = "guest_link_in_use"


async def replay_is_refused(http, token: str) -> None:
    """Every way in by the link, from a browser that is not the guest's."""
    page = await http.get(f"/guest/{token}")
    text = await page.text()
    assert page.status == 403 and "already in use in another browser" in text
    assert IN_USE in text
    for method, path, body in [
        ("GET", "status", None),
        ("POST", "name", {"name": "Mallory"}),
        ("GET", "consent", None),
        ("POST", "waiting", None),
    ]:
        resp = await http.request(method, f"/api/guest/{token}/{path}", json=body)
        assert resp.status == 403, (path, await resp.text())
        assert (await resp.json())["error"]["code"] == IN_USE, path
    assert not [c for c in http.session.cookie_jar if c.key == "oc_guest"]


async def test_a_guest_link_works_in_the_first_browser_only(
    server, http_clients, waiting: WaitingFactory, sockets
):
    v = await waiting.visitable()
    visit_id, provider_headers = await admit_patient(server, http_clients(), v, sockets)
    url = str(server.make_url("/"))
    provider = await sockets(url, "/visit", provider_headers, {"visit_id": visit_id})
    invitation = await invite(http_clients(), visit_id, provider_headers, "Interpreter")
    token = invitation["path"].rsplit("/", 1)[1]

    # Before anyone gives a name, the link opens anywhere (the provider may test it).
    assert (await http_clients().get(invitation["path"])).status == 200
    guest = http_clients()
    await guest_checks_in(guest, invitation["path"], "Ana Souza")
    # Someone else with the link, while the guest waits…
    await replay_is_refused(http_clients(), token)
    # …and after the guest was admitted.
    assert "guest" in await provider.call("admit_guest", {"guest_id": invitation["id"]})
    stranger = http_clients()
    await replay_is_refused(stranger, token)
    assert (await stranger.get(f"/visit/{visit_id}")).status == 404
    assert (await refused_connection(server, {}, visit_id))["code"] == "not_found"
    # The guest's own browser goes on: the link, their page and the visit.
    status = await guest.get(f"/api/guest/{token}/status")
    assert status.status == 200
    assert (await status.json())["visit_url"] == f"/visit/{visit_id}"
    assert (await guest.get(f"/guest/{token}")).status == 200
    assert (await guest.get(f"/visit/{visit_id}")).status == 200


async def test_the_link_in_use_page_leads_to_the_clinic_not_the_staff_start_page(
    server, http_clients, waiting: WaitingFactory, sockets, db
):
    v = await waiting.visitable()
    async with db.session() as session:
        clinic = await session.get(Clinic, v.clinic.id)
        assert clinic is not None
        clinic.phone = "+1 555 0100"
        session.add(clinic)
        await session.commit()
    visit_id, provider_headers = await admit_patient(server, http_clients(), v, sockets)
    invitation = await invite(http_clients(), visit_id, provider_headers, "Interpreter")
    await guest_checks_in(http_clients(), invitation["path"], "Ana Souza")

    page = await http_clients().get(invitation["path"])
    text = await page.text()
    assert page.status == 403 and "already in use in another browser" in text
    assert "Back to the start page" not in text and "guest_link_in_use" in text
    assert clinic.name in text and 'href="tel:+15550100"' in text
