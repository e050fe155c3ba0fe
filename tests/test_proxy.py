"""Behind a reverse proxy (deploy/nginx/lapor.conf): Twilio signs the public https URL it called, the
gateway sees a plain-http request from the proxy on loopback. The signature must be checked against
`server.public_url` + the request target exactly as sent (raw, query included), and never against
whatever Host / X-Forwarded-* headers claim: those come from the client as much as from the proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from yarl import URL

from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio_webhooks import sign, sms_params
from tests.harness import RunningGateway, bound_socket, make_config, start_gateway

PUBLIC = "https://lapor.semarangkota.go.id"


@pytest.fixture
async def gateway(database_url: str, fake_twilio: FakeTwilio) -> AsyncIterator[RunningGateway]:
    sock = bound_socket()
    config = make_config(
        database_url,
        sock.getsockname()[1],
        SERVER__PUBLIC_URL=PUBLIC + "/",  # a trailing slash as operators type it
        CHANNELS__TWILIO__ACCOUNT_SID=fake_twilio.account_sid,
        CHANNELS__TWILIO__AUTH_TOKEN=fake_twilio.auth_token,
        CHANNELS__TWILIO__SMS_FROM="+15005550006",
        CHANNELS__TWILIO__API_BASE=fake_twilio.base_url,
        DASHBOARD__ENABLED="false",
    )
    running = await start_gateway(config, sock, background=False)
    yield running
    await running.stop()


async def post_as_proxy(
    gw: RunningGateway, target: str, signed_for: str, auth_token: str, **headers: str
) -> int:
    """What nginx forwards: the client's request target unchanged, over http on loopback."""
    params = sms_params(Body="LaporHendi lampu jalan mati di Jl. Pemuda")
    proxied = {
        "Host": "lapor.semarangkota.go.id",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "54.172.60.1",
        "X-Twilio-Signature": sign(signed_for, params, auth_token),
        **headers,
    }
    url = URL(gw.url + target, encoded=True)  # keep %-escapes exactly as Twilio sent them
    async with gw.session.post(url, data=params, headers=proxied) as response:
        await response.read()
        return response.status


@pytest.mark.parametrize(
    "target",
    [
        "/webhooks/twilio/sms",
        "/webhooks/twilio/sms?kanal=sms&kota=Semarang%20Tengah",
        "/webhooks/twilio/sms?nama=Lapor+Hendi&path=%2Fa%2Fb",
    ],
)
async def test_a_webhook_signed_for_the_public_url_is_accepted_behind_the_proxy(
    gateway: RunningGateway, fake_twilio: FakeTwilio, target: str
) -> None:
    assert await post_as_proxy(gateway, target, PUBLIC + target, fake_twilio.auth_token) == 200


async def test_signatures_for_other_urls_are_refused_whatever_the_headers_say(
    gateway: RunningGateway, fake_twilio: FakeTwilio
) -> None:
    path = "/webhooks/twilio/sms"
    token = fake_twilio.auth_token
    # Signed for the address the gateway itself listens on: not what Twilio calls, so not Twilio.
    assert await post_as_proxy(gateway, path, gateway.url + path, token) == 403
    # Forwarded headers pointing elsewhere do not change the URL the signature must cover.
    evil = "https://evil.example"
    forged = {"X-Forwarded-Host": "evil.example"}
    assert await post_as_proxy(gateway, path, evil + path, token, Host="evil.example") == 403
    assert await post_as_proxy(gateway, path, evil + path, token, **forged) == 403
    # The query is part of what Twilio signs: a changed query is a different request.
    assert await post_as_proxy(gateway, path + "?a=2", PUBLIC + path + "?a=1", token) == 403
