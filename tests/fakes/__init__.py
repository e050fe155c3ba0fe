"""Providers faked at the HTTP level on loopback, driven through the project's real client code."""

from .twilio import FakeTwilio
from .twilio_webhooks import random_sid, sign, sms_params, status_params

__all__ = ["FakeTwilio", "random_sid", "sign", "sms_params", "status_params"]
