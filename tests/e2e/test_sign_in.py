"""Staff sign in with the keyboard, land on their page, and sign out."""

from __future__ import annotations

from playwright.async_api import BrowserContext, expect

from app.core.models import Role
from tests.conftest import Factory


async def test_admin_signs_in_by_keyboard_sees_staff_and_audit_and_signs_out(
    context: BrowserContext, factory: Factory
):
    clinic = await factory.clinic()
    admin = await factory.staff(Role.ADMIN, clinic)
    provider = await factory.staff(Role.PROVIDER, clinic)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    await page.goto("/admin")
    assert page.url.endswith("/login?next=/admin")
    # Keyboard only: the email field has focus, Tab reaches the password, Enter submits.
    # Chromium applies autofocus at its next rendering step, which may follow the load event.
    await expect(page.get_by_label("Email")).to_be_focused()
    await page.keyboard.type(admin.user.email)
    await page.keyboard.press("Tab")
    await page.keyboard.type(admin.password)
    await page.keyboard.press("Enter")
    # The second step: the code from the admin's authenticator app, typed into the focused field.
    await page.wait_for_url("**/login/mfa?next=/admin")
    await expect(page.get_by_label("Code")).to_be_focused()
    await page.keyboard.type(admin.totp_code())
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/admin")
    await expect(page.get_by_role("heading", name="Clinic administration")).to_be_visible()
    await expect(page.get_by_role("cell", name=provider.user.email)).to_be_visible()
    await expect(page.locator("#audit-table")).to_contain_text("auth.login")

    # Add a colleague through the form; the list updates without a reload.
    await page.get_by_label("Full name").fill("Dr. New Colleague")
    await page.get_by_label("Email").fill("new.colleague@clinic.example")
    await page.get_by_label("Role").select_option("scheduler")
    await page.get_by_label("Initial password").fill("password1234")
    await page.get_by_role("button", name="Add").click()
    await expect(page.locator("#new-user-status")).to_contain_text("most common passwords")
    await page.get_by_label("Initial password").fill("a-very-long-password")
    await page.get_by_role("button", name="Add").click()
    await expect(page.locator("#new-user-status")).to_have_text("Added Dr. New Colleague.")
    await expect(page.get_by_role("cell", name="new.colleague@clinic.example")).to_be_visible()

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/login?signed_out=1")
    await expect(page.get_by_role("status")).to_have_text("You are signed out.")
    await page.goto("/admin")
    assert "/login" in page.url
    # The only console error is the browser's note of the refused weak password (400).
    assert [e for e in errors if "status of 400" not in e] == [] and len(errors) == 1


async def test_wrong_password_and_lockout_say_the_same(context: BrowserContext, factory: Factory):
    provider = await factory.staff(Role.PROVIDER)
    page = await context.new_page()
    await page.goto("/login")
    for attempt in range(5):
        await page.get_by_label("Email").fill(provider.user.email)
        await page.get_by_label("Password").fill(f"wrong-{attempt}")
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_load_state()
    # Locked now, but a stranger must not learn that (nor that the account exists): the page
    # says what it says to any wrong password, and explains locking in general.
    await page.get_by_label("Password").fill(provider.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Email or password is incorrect.")
    await expect(page.get_by_text("After 5 wrong attempts an account is locked")).to_be_visible()
    await expect(page.get_by_label("Email")).to_have_value(provider.user.email)


async def test_a_provider_cannot_open_the_admin_page(context: BrowserContext, factory: Factory):
    provider = await factory.staff(Role.PROVIDER)
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("Email").fill(provider.user.email)
    await page.get_by_label("Password").fill(provider.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/provider")
    response = await page.goto("/admin")
    assert response is not None and response.status == 403
    await expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
