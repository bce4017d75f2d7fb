"""Two-step sign-in and passwords in the browser: enrolling, the admin's switches, a password."""

from __future__ import annotations

import pyotp
from playwright.async_api import BrowserContext, Page, expect

from app.core.models import Role
from tests.conftest import Factory, StaffAccount
from tests.test_mfa import wrong_code


async def _password_step(page: Page, account: StaffAccount, path: str = "/login") -> None:
    await page.goto(path)
    await page.get_by_label("Email").fill(account.user.email)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Sign in").click()


async def test_a_new_admin_enrols_by_keyboard_and_keeps_the_recovery_codes(
    context: BrowserContext, factory: Factory
):
    admin = await factory.staff(Role.ADMIN, mfa=False)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await _password_step(page, admin, "/login?next=/admin")
    await page.wait_for_url("**/login/enrol?next=/admin")
    await expect(page.get_by_role("heading", name="Set up two-step sign-in")).to_be_visible()
    await expect(page.locator("figure.qr svg")).to_be_visible()
    # Nothing else opens before enrolling.
    await expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    # The key to type by hand sits behind a disclosure that opens from the keyboard.
    await page.get_by_text("Can't scan it? Type this key instead").focus()
    await page.keyboard.press("Enter")
    secret = await page.locator("#totp-secret").inner_text()
    await page.get_by_label("Code from the app").focus()
    await page.keyboard.type(wrong_code(secret))
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    await page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on two-step sign-in").click()
    await expect(page.get_by_role("heading", name="Two-step sign-in is on")).to_be_visible()
    await expect(page.get_by_role("list", name="Recovery codes").locator("li")).to_have_count(10)
    await page.get_by_role("link", name="I have saved them, continue").click()
    await page.wait_for_url("**/admin")
    await expect(page.get_by_role("heading", name="Clinic administration")).to_be_visible()
    assert [e for e in errors if "status of 401" not in e] == []


async def test_the_admin_requires_mfa_and_resets_a_colleagues(
    context: BrowserContext, factory: Factory
):
    clinic = await factory.clinic()
    admin = await factory.staff(Role.ADMIN, clinic)
    provider = await factory.staff(Role.PROVIDER, clinic, mfa=True)
    page = await context.new_page()
    await _password_step(page, admin)
    await page.get_by_label("Code").fill(admin.totp_code())
    await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url("**/admin")

    box = page.get_by_label("Require two-step sign-in for all staff")
    await expect(box).to_be_enabled()
    await expect(box).not_to_be_checked()
    await box.focus()
    await page.keyboard.press("Space")
    await expect(page.locator("#require-mfa-status")).to_contain_text("Saved: everyone")
    await page.reload()
    await expect(page.get_by_label("Require two-step sign-in for all staff")).to_be_checked()

    row = page.get_by_role("row").filter(has_text=provider.user.email)
    await expect(row.get_by_role("cell", name="On", exact=True)).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    await row.get_by_role("button", name="Reset two-step sign-in of Test Provider").click()
    await expect(page.locator("#users-status")).to_have_text(
        "Two-step sign-in of Test Provider is reset."
    )
    await expect(row.get_by_role("cell", name="Off", exact=True)).to_be_visible()


async def test_a_provider_changes_the_password_on_the_security_page(
    context: BrowserContext, factory: Factory
):
    provider = await factory.staff(Role.PROVIDER)
    page = await context.new_page()
    await _password_step(page, provider)
    await page.wait_for_url("**/provider")
    await page.get_by_role("link", name="Security").click()
    await page.wait_for_url("**/account/security")
    await expect(page.get_by_role("heading", name="Sign-in and security")).to_be_visible()
    await page.get_by_label("Current password").fill(provider.password)
    await page.get_by_label("New password").fill("password1234")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("alert")).to_contain_text("most common passwords")
    await expect(page.get_by_label("New password")).to_have_attribute("aria-invalid", "true")
    # Nothing on the page stands in the way of pasting from a password manager.
    prevented = await page.get_by_label("New password").evaluate(
        """el => { const e = new ClipboardEvent("paste", {bubbles: true, cancelable: true});
                   el.dispatchEvent(e); return e.defaultPrevented; }"""
    )
    assert prevented is False
    passphrase = "the ferry leaves at dawn with seven lanterns and a tired cat " * 2
    await page.get_by_label("Current password").fill(provider.password)
    await page.get_by_label("New password").fill(passphrase)
    await page.get_by_role("button", name="Change password").click()
    await page.wait_for_url("**/account/security?changed=1")
    await expect(page.get_by_role("status")).to_contain_text("Your password is changed")
    # Still signed in here.
    await page.goto("/provider")
    await expect(page.get_by_role("heading", name="My clinic day")).to_be_visible()
