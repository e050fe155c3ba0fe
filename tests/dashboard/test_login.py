"""Signing in to the dashboard: passwords, lockout, CSRF and the session cookie."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from yarl import URL

from dashboard.auth import MAX_FAILED_LOGINS, SESSION_COOKIE
from tests.dashboard.conftest import PASSWORD, Dashboard, csrf_from


async def test_right_password_opens_the_complaint_list(dashboard: Dashboard) -> None:
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as browser:
        async with browser.get("/dashboard/", allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/dashboard/login"
        token = await csrf_from(browser, "/dashboard/login")
        form = {"username": "siti", "password": PASSWORD, "csrf": token}
        async with browser.post("/dashboard/login", data=form, allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/dashboard/"
            set_cookie = response.headers.getall("Set-Cookie")
        session_cookie = next(c for c in set_cookie if c.startswith(SESSION_COOKIE + "="))
        assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
        async with browser.get("/dashboard/") as response:
            assert response.status == 200
            page = await response.text()
        assert "Aduan" in page and "siti" in page


async def test_wrong_password_and_unknown_user_get_the_same_answer(dashboard: Dashboard) -> None:
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as browser:
        assert await dashboard.login(browser, "siti", "salah") == 401
        assert await dashboard.login(browser, "tidak-ada", "salah") == 401
        async with browser.get("/dashboard/", allow_redirects=False) as response:
            assert response.status == 302


async def test_five_failures_lock_the_account_for_fifteen_minutes(dashboard: Dashboard) -> None:
    await dashboard.add_user("budi", "officer")
    async with dashboard.browser() as browser:
        statuses = [await dashboard.login(browser, "budi", f"tebakan-{i}") for i in range(MAX_FAILED_LOGINS)]
        assert statuses == [401] * (MAX_FAILED_LOGINS - 1) + [429]
        # Locked: even the right password is refused until the lock runs out.
        assert await dashboard.login(browser, "budi", PASSWORD) == 429
        dashboard.clock.advance(timedelta(minutes=14))
        assert await dashboard.login(browser, "budi", PASSWORD) == 429
        dashboard.clock.advance(timedelta(minutes=2))
        assert await dashboard.login(browser, "budi", PASSWORD) == 302


async def test_a_success_resets_the_failure_count(dashboard: Dashboard) -> None:
    await dashboard.add_user("budi", "officer")
    async with dashboard.browser() as browser:
        for i in range(MAX_FAILED_LOGINS - 1):
            assert await dashboard.login(browser, "budi", f"tebakan-{i}") == 401
        assert await dashboard.login(browser, "budi") == 302
    async with dashboard.browser() as browser:
        for i in range(MAX_FAILED_LOGINS - 1):
            assert await dashboard.login(browser, "budi", f"lagi-{i}") == 401
        assert await dashboard.login(browser, "budi") == 302


async def test_login_without_a_valid_csrf_token_is_refused(dashboard: Dashboard) -> None:
    await dashboard.add_user("siti", "admin")
    form = {"username": "siti", "password": PASSWORD}
    async with dashboard.browser() as browser:
        await csrf_from(browser, "/dashboard/login")  # has the CSRF cookie, sends no token
        async with browser.post("/dashboard/login", data=form, allow_redirects=False) as response:
            assert response.status == 403
    async with dashboard.browser() as attacker, dashboard.browser() as victim:
        stolen = await csrf_from(attacker, "/dashboard/login")  # a token minted for someone else
        await csrf_from(victim, "/dashboard/login")
        async with victim.post(
            "/dashboard/login", data={**form, "csrf": stolen}, allow_redirects=False
        ) as response:
            assert response.status == 403
        async with victim.get("/dashboard/", allow_redirects=False) as response:
            assert response.status == 302


async def test_a_tampered_session_cookie_is_ignored(dashboard: Dashboard) -> None:
    await dashboard.add_user("budi", "officer")
    async with dashboard.browser() as browser:
        assert await dashboard.login(browser, "budi") == 302
        value = browser.cookie_jar.filter_cookies(URL(dashboard.url))[SESSION_COOKIE].value
    payload, signature = value.rsplit(".", 1)
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["r"] == "officer"
    promoted = base64.urlsafe_b64encode(json.dumps({**claims, "r": "admin"}).encode()).rstrip(b"=").decode()
    async with dashboard.browser() as other:  # control: the genuine cookie works from anywhere
        other.cookie_jar.update_cookies({SESSION_COOKIE: value}, response_url=URL(dashboard.url))
        async with other.get("/dashboard/", allow_redirects=False) as response:
            assert response.status == 200
    for forged in (f"{promoted}.{signature}", f"{payload}.{signature[:-1]}x", payload, "", "a.b.c"):
        async with dashboard.browser() as attacker:
            attacker.cookie_jar.update_cookies({SESSION_COOKIE: forged}, response_url=URL(dashboard.url))
            async with attacker.get("/dashboard/", allow_redirects=False) as response:
                assert response.status == 302, forged


async def test_logout_needs_the_form_token_and_ends_the_session(dashboard: Dashboard) -> None:
    await dashboard.add_user("siti", "admin")
    async with dashboard.browser() as browser:
        assert await dashboard.login(browser, "siti") == 302
        async with browser.post("/dashboard/logout", data={}, allow_redirects=False) as response:
            assert response.status == 403
        token = await csrf_from(browser, "/dashboard/")
        async with browser.post("/dashboard/logout", data={"csrf": token}, allow_redirects=False) as response:
            assert response.status == 302
        async with browser.get("/dashboard/", allow_redirects=False) as response:
            assert response.status == 302


async def test_english_is_remembered_in_a_cookie(dashboard: Dashboard) -> None:
    async with dashboard.browser() as browser:
        async with browser.get("/dashboard/login?lang=en") as response:
            assert "Sign in" in await response.text()
        async with browser.get("/dashboard/login") as response:
            assert "Sign in" in await response.text()
        async with browser.get("/dashboard/login?lang=id") as response:
            assert "Masuk" in await response.text()
