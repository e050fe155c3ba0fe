"""From `[workflow]` and `[privacy]` configuration to the services `create_app` starts."""

from __future__ import annotations

from gateway.config import Config
from workflow.calendar import WorkingCalendar
from workflow.privacy import load_vault
from workflow.settings import WorkflowSettings


def settings_from_config(config: Config) -> WorkflowSettings:
    """Reads (or creates, once) the privacy key file when no key is configured: call at start-up."""
    wf, privacy = config.workflow, config.privacy
    previous = (privacy.previous_key.reveal(),) if privacy.previous_key else ()
    return WorkflowSettings(
        calendar=WorkingCalendar.from_strings(
            wf.collective_leave, joint_leave=wf.joint_leave, working_days=wf.working_days
        ),
        verify_days=wf.verify_days,
        scope_days={"single": wf.single_days, "coordination": wf.coordination_days, "agency": wf.agency_days},
        close_after_days=wf.close_after_days,
        reminder_hours=wf.reminder_hours,
        admin_after_days=wf.admin_after_days,
        rating_days=wf.rating_days,
        vault=load_vault(privacy.key.reveal(), privacy.key_file, previous),
        staff_telegram_channel=wf.staff_telegram_channel,
        staff_whatsapp_channel=wf.staff_whatsapp_channel,
    )
