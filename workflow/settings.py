"""What the workflow needs from configuration, as one immutable value the services share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from workflow.calendar import WorkingCalendar
from workflow.privacy import ContactVault

SCOPE_DAYS: Mapping[str, int] = MappingProxyType({"single": 5, "coordination": 10, "agency": 30})
"""Perwal Semarang 5/2023: one department, cross-department coordination, across agencies."""


@dataclass(frozen=True)
class WorkflowSettings:
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    verify_days: int = 3
    scope_days: Mapping[str, int] = field(default_factory=lambda: SCOPE_DAYS)
    close_after_days: int = 10
    """Working days after resolution without the reporter's YA/BELUM before it closes by itself."""
    reminder_hours: float = 24.0
    """How long before a due date the department officer is reminded."""
    admin_after_days: int = 2
    """Working days overdue (after the head of department was told) before the city admin is."""
    rating_days: int = 7
    """Calendar days after closing during which a bare 1-5 reply counts as the rating."""
    vault: ContactVault | None = None
    """Decrypts reporters' contacts for status messages; None while contacts are still plaintext."""
    staff_telegram_channel: str = "telegram"
    """Channel (adapter name) that carries reminders to officers with a Telegram chat id; "" for none."""
    staff_whatsapp_channel: str = "whatsapp_cloud"
    """Channel for officers with a WhatsApp number ("twilio_whatsapp" on Twilio); "" for none."""

    def days_for(self, scope: str | None) -> int:
        return self.scope_days.get(scope or "single", self.scope_days["single"])
