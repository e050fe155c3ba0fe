"""Which adapters exist and when they are on. Adding a channel is one line in `ADAPTER_FACTORIES`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from adapters.base import ChannelAdapter
from gateway.config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdapterFactory:
    name: str
    enabled: Callable[[Config], bool]
    build: Callable[[Config], ChannelAdapter]
    off_reason: str


def _twilio_sms(config: Config) -> ChannelAdapter:
    from adapters.sms.twilio import TwilioSmsAdapter

    return TwilioSmsAdapter(config.channels.twilio, config.public_url, config.intake.default_region)


def _telegram(config: Config) -> ChannelAdapter:
    from adapters.telegram import TelegramAdapter

    return TelegramAdapter(config.channels.telegram, config.intake.default_region)


def _whatsapp_cloud(config: Config) -> ChannelAdapter:
    from adapters.whatsapp.cloud import WhatsAppCloudAdapter

    return WhatsAppCloudAdapter(
        config.channels.whatsapp_cloud, config.intake.default_region, max_media_bytes=config.media.max_bytes
    )


def _twilio_whatsapp(config: Config) -> ChannelAdapter:
    from adapters.whatsapp.twilio import TwilioWhatsAppAdapter

    return TwilioWhatsAppAdapter(
        config.channels.twilio,
        config.public_url,
        config.intake.default_region,
        max_media_bytes=config.media.max_bytes,
    )


def _kannel(config: Config) -> ChannelAdapter:
    from adapters.kannel import KannelAdapter

    return KannelAdapter(config.channels.kannel, config.public_url, config.intake.default_region)


def _twitter(config: Config) -> ChannelAdapter:
    from adapters.twitter import TwitterAdapter

    return TwitterAdapter(config.channels.twitter, config.public_url)


def _simulator(config: Config) -> ChannelAdapter:
    from adapters.web.simulator import SimulatorAdapter

    return SimulatorAdapter(config.intake.default_region)


ADAPTER_FACTORIES: tuple[AdapterFactory, ...] = (
    AdapterFactory(
        "twilio_sms",
        lambda c: c.channels.twilio.enabled,
        _twilio_sms,
        "set channels.twilio.account_sid and auth_token",
    ),
    AdapterFactory(
        "telegram",
        lambda c: c.channels.telegram.enabled,
        _telegram,
        "set channels.telegram.bot_token (and secret_token)",
    ),
    AdapterFactory(
        "whatsapp_cloud",
        lambda c: c.channels.whatsapp_cloud.enabled,
        _whatsapp_cloud,
        "set channels.whatsapp_cloud.phone_number_id, access_token and app_secret",
    ),
    AdapterFactory(
        "twilio_whatsapp",
        lambda c: c.channels.twilio.enabled and bool(c.channels.twilio.whatsapp_from),
        _twilio_whatsapp,
        "set channels.twilio.account_sid, auth_token and whatsapp_from",
    ),
    AdapterFactory("kannel", lambda c: c.channels.kannel.enabled, _kannel,
                   "set channels.kannel.sendsms_url and inbound_token"),
    AdapterFactory("twitter", lambda c: c.channels.twitter.enabled, _twitter,
                   "set channels.twitter.bearer_token or consumer_key and access_token"),
    AdapterFactory("simulator", lambda c: c.simulator.enabled, _simulator, "simulator.enabled is false"),
)


def build_adapters(config: Config) -> dict[str, ChannelAdapter]:
    """Instantiate the configured adapters; say at start which channels are off and why."""
    adapters: dict[str, ChannelAdapter] = {}
    for factory in ADAPTER_FACTORIES:
        if factory.enabled(config):
            adapters[factory.name] = factory.build(config)
            log.info("channel %s: on", factory.name)
        else:
            log.info("channel %s: off (%s)", factory.name, factory.off_reason)
    return adapters
