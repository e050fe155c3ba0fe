"""The intake state machine: one citizen event in, the new state and the effects out.

`step` is the only entry point the pipeline calls. It is pure: no clock but `ctx.now`/the event time,
no I/O, no channel knowledge beyond "can this medium carry a photo". Whatever needs the database
(a status lookup, a duplicate search) is emitted as an effect; the pipeline answers with another
event in the same transaction.

The flow, by what is missing (see `guards.stage_of`):
  description -> location -> photo (only on media channels, only if we already had to ask) ->
  confirmation -> [possible duplicate: YA joins, TIDAK files] -> filed with a tracking code.
Photos and shared locations fill their slot whenever they arrive; commands work at every stage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from conversation import api
from conversation.catalog import render
from conversation.categories import FALLBACK, display_name
from conversation.commands import (
    Command,
    CommandName,
    fold_text,
    is_greeting,
    is_no,
    is_thanks,
    is_yes,
    looks_english,
    parse_command,
)
from conversation.description import describe
from conversation.display import local_time
from conversation.gsm import SEGMENT, septets
from conversation.guards import has_enough, has_location, stage_of
from conversation.keywords import strip_keyword
from conversation.places import find_place
from conversation.state import (
    MAX_ATTACHMENTS,
    MAX_DESCRIPTION,
    MAX_FILED,
    ConversationState,
    DraftState,
    Filed,
    Stage,
    dump,
    load,
    print_of,
    same_print,
)
from conversation.text import has_letters, words

# A repeat of the previous message within this window is "sent twice", not a new complaint.
REPEAT_WINDOW = timedelta(hours=1)
# The same complaint text again this soon after filing it points to the code, not a new filing.
ALREADY_FILED_WINDOW = timedelta(days=1)
# A photo or location with no words, this soon after filing, is evidence for that complaint.
EVIDENCE_WINDOW = timedelta(hours=2)
# At most this many complaints are listed in answer to a bare STATUS (each is one SMS).
STATUS_LIST_LIMIT = 3
# Below this the category is not named back to the citizen (it is still stored as a hint).
CONFIDENT = 0.5


@dataclass
class _Step:
    """One step in progress: the mutable state, the context and the effects collected so far."""

    state: ConversationState
    ctx: api.Context
    effects: list[api.Effect] = field(default_factory=list)
    code_used: bool = False
    code: str | None = None

    def tracking_code(self) -> str:
        """The context's code for this step, made once (it may be made on demand)."""
        if self.code is None:
            self.code = self.ctx.tracking_code()
        return self.code

    @property
    def lang(self) -> str:
        return self.state.language

    def say(self, key: str, **params: object) -> None:
        # The language off the state, not through the `lang` property (a Python call).
        self.effects.append(api.Reply(text=render(self.state.language, key, **params), key=key))

    def emit(self, effect: api.Effect) -> None:
        self.effects.append(effect)


def step(state: Mapping[str, Any] | None, event: api.Event, ctx: api.Context) -> api.StepResult:
    """Advance one reporter's conversation by one event. Never raises on odd input or state."""
    run = _Step(load(state, ctx.settings.default_language), ctx)
    if isinstance(event, api.Turn):
        _on_turn(run, event)
    elif isinstance(event, api.Tick):
        _on_tick(run, event)
    elif isinstance(event, api.StatusAnswer):
        _on_status_answer(run, event)
    elif isinstance(event, api.DuplicateAnswer):
        _on_duplicate_answer(run, event)
    return api.StepResult(
        state=dump(run.state, stage_of(run.state)),
        effects=tuple(run.effects),
        timer_at=timer_at(run.state, ctx.settings),
    )


def timer_at(state: ConversationState, settings: api.Settings) -> datetime | None:
    """When the pipeline should Tick: the reminder first, then the expiry; None when idle."""
    draft = state.draft
    if draft is None or draft.expired or state.last_activity is None:
        return None
    if not state.reminded and settings.reminder_after < settings.expire_after:
        return state.last_activity + settings.reminder_after
    return state.last_activity + settings.expire_after


# ---- turns -----------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _meaningful(text: str) -> bool:
    """Words that can describe a problem (not only emoji, punctuation, a greeting or thanks).
    Cached: a step asks it of the same text up to three times."""
    return has_letters(text) and bool(words(text)) and not is_greeting(text) and not is_thanks(text)


def _on_turn(run: _Step, turn: api.Turn) -> None:
    state = run.state
    first_contact = state.last_activity is None and state.draft is None and not state.filed
    state.medium = turn.medium
    state.awaiting_duplicates = False
    state.awaiting_status = False
    state.last_activity = turn.at
    state.reminded = False
    if state.draft is not None:
        state.draft.expired = False

    keyword, text = strip_keyword(turn.text or "", run.ctx.settings.keywords)
    if first_contact and not state.language_chosen and looks_english(text):
        state.language = "en"
    has_media = bool(turn.attachments) or turn.place is not None
    fingerprint = fold_text(text)
    repeated = (
        bool(fingerprint)
        and not has_media
        and same_print(state.last_fingerprint, fingerprint)
        and state.last_turn_at is not None
        and turn.at - state.last_turn_at <= REPEAT_WINDOW
    )
    state.last_fingerprint = print_of(fingerprint)
    state.last_turn_at = turn.at

    command = None if has_media else parse_command(text)
    if command is not None:
        _on_command(run, command, turn)
        return

    stage = stage_of(state)
    if stage is Stage.DUPLICATE and not has_media and (is_yes(text) or is_no(text)):
        _answer_duplicate(run, yes=is_yes(text), turn=turn)
        return
    if stage is Stage.CONFIRMATION and not has_media and is_yes(text):
        _confirmed(run, turn)
        return
    if stage is Stage.CONFIRMATION and not has_media and is_no(text):
        run.say("confirm_correction")
        return
    if repeated:
        _on_repeat(run, fingerprint)
        return
    if state.draft is None:
        _on_idle_turn(run, turn, text, keyword)
    else:
        _fill(run, turn, text, stage)


def _on_repeat(run: _Step, fingerprint: str) -> None:
    """The same words again (an SMS resent, a double tap): say where we are, change nothing."""
    if run.state.draft is not None:
        _prompt(run, stage_of(run.state), again=False)
        return
    for filed in run.state.filed:
        if same_print(filed.fingerprint, fingerprint):
            run.say("already_filed", code=filed.code)
            return
    run.say("welcome")


def _on_idle_turn(run: _Step, turn: api.Turn, text: str, keyword: str | None) -> None:
    state = run.state
    has_media = bool(turn.attachments) or turn.place is not None
    if not has_media and not _meaningful(text):
        if is_thanks(text) and not is_greeting(text):
            run.say("thanks")
        elif keyword is not None and not text:
            run.say("ask_description")
        else:
            run.say("welcome")
        return
    fingerprint = fold_text(text)
    for filed in state.filed:
        if same_print(filed.fingerprint, fingerprint) and turn.at - filed.at <= ALREADY_FILED_WINDOW:
            run.say("already_filed", code=filed.code)
            return
    recent = state.filed[0] if state.filed else None
    if has_media and not _meaningful(text) and recent is not None and turn.at - recent.at <= EVIDENCE_WINDOW:
        run.emit(api.AddEvidence(code=recent.code, attachments=tuple(turn.attachments), place=turn.place))
        run.say("evidence_added" if turn.attachments else "evidence_place_added", code=recent.code)
        return
    state.draft = DraftState(started_at=turn.at, anonymous=state.anonymous_next)
    _fill(run, turn, text, Stage.DESCRIPTION)


def _set_place_text(draft: DraftState, place_text: str) -> None:
    draft.place_text = place_text.strip()[:300] or None


def _append_description(draft: DraftState, text: str) -> None:
    text = text.strip()
    if not text:
        return
    before = draft.description
    combined = f"{before}\n{text}" if before else text
    draft.description = combined[:MAX_DESCRIPTION]
    # The category of all the words but the place (`plain_suggestion`), read from where the
    # reading of the description before these words stopped.
    suggestion = describe(draft.description, before).suggestion()
    draft.category = suggestion.slug
    draft.confidence = suggestion.confidence


def _take_media(draft: DraftState, turn: api.Turn) -> None:
    room = MAX_ATTACHMENTS - len(draft.attachments)
    draft.attachments.extend(list(turn.attachments)[: max(room, 0)])
    if turn.place is not None:
        if _valid_point(turn.place.latitude, turn.place.longitude):
            draft.latitude = turn.place.latitude
            draft.longitude = turn.place.longitude
        if turn.place.text:
            _set_place_text(draft, turn.place.text)


def _valid_point(latitude: float | None, longitude: float | None) -> bool:
    """A shared location we can store and map (a broken client may send NaN or 0/0)."""
    if latitude is None or longitude is None:
        return False
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return False
    return -90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0 and (latitude, longitude) != (0.0, 0.0)


def _fill(run: _Step, turn: api.Turn, text: str, stage: Stage) -> None:
    """Put what the turn carries into the draft's slots, then ask for what is still missing."""
    draft = run.state.draft
    assert draft is not None
    had_location = has_location(draft)
    photos_before = len(draft.attachments)
    _take_media(draft, turn)
    got_photo = len(draft.attachments) > photos_before
    got_place = turn.place is not None

    if _meaningful(text) and stage is not Stage.DUPLICATE:
        match = find_place(text)
        if stage is Stage.LOCATION and not got_place:
            _fill_location_answer(draft, text)
        elif stage is Stage.PHOTO and not got_photo and is_no(text):
            draft.photo_skipped = True
        elif stage is Stage.PHOTO and not got_photo and is_yes(text):
            run.say("send_photo_now")
            return
        elif match is not None and not words(match.rest):
            # Only a place ("di Jl. Pemuda"): it fills the location, the problem is still unknown.
            _set_place_text(draft, match.text)
            got_place = True
        else:
            if match is not None and (not had_location or stage is Stage.CONFIRMATION):
                _set_place_text(draft, match.text)
            _append_description(draft, text)
            if stage is Stage.PHOTO and not got_photo:
                draft.photo_skipped = True

    next_stage = stage_of(run.state)
    if next_stage is Stage.CONFIRMATION and got_photo and stage is Stage.CONFIRMATION:
        run.say("photo_added")
        return
    filled_nothing = not got_photo and not got_place
    same_question = next_stage is stage and stage is not Stage.CONFIRMATION and filled_nothing
    if next_stage is Stage.DESCRIPTION and not same_question:
        key = "ask_description_after_photo" if got_photo else "ask_description_after_location"
        draft.asked += 1
        run.say(key if (got_photo or got_place) else "ask_description")
        return
    _prompt(run, next_stage, again=same_question)


def _fill_location_answer(draft: DraftState, text: str) -> None:
    """An answer to "where?": the place phrases in it, or the whole short answer as the place."""
    match = find_place(text)
    if match is not None:
        _set_place_text(draft, match.text)
        if len(words(match.rest)) >= 3:
            _append_description(draft, match.rest)
    elif len(words(text)) <= 12:
        _set_place_text(draft, text)
    else:
        _append_description(draft, text)


def _summary(draft: DraftState) -> str:
    """The complaint in a line: its words without the place phrases (the place is shown apart);
    a long message is summarised by the clause that names the problem (`plain_summary`)."""
    return describe(draft.description).summary(draft.description, draft.category)


def _place_label(run: _Step, draft: DraftState) -> str:
    if draft.place_text:
        return draft.place_text
    if draft.latitude is not None:
        return render(run.lang, "shared_location")
    return "-"


def _prompt(run: _Step, stage: Stage, again: bool) -> None:
    """Ask for what `stage` is missing (`again`: the last answer did not fill it)."""
    draft = run.state.draft
    if stage is Stage.IDLE or draft is None:
        run.say("welcome")
    elif stage is Stage.DESCRIPTION:
        run.say("ask_description_again" if again else "ask_description")
    elif stage is Stage.LOCATION:
        if not again:
            draft.asked += 1
        run.say("ask_location_again" if again else "ask_location")
    elif stage is Stage.PHOTO:
        if not again:
            draft.asked += 1
        run.say("ask_photo", place=_place_label(run, draft))
    elif stage is Stage.DUPLICATE:
        run.say("ask_duplicate_again", code=draft.duplicate_of or "")
    else:
        _confirm(run, draft)


def _confirm(run: _Step, draft: DraftState) -> None:
    category = display_name(draft.category, run.lang)
    named = draft.category not in (None, FALLBACK) and draft.confidence >= CONFIDENT
    if not has_location(draft):
        key = "confirm_no_place" if named else "confirm_plain"
        if key == "confirm_plain":
            run.say(key, summary=_summary(draft), place="-")
        else:
            run.say(key, summary=_summary(draft), category=category)
        return
    place = _place_label(run, draft)
    if named:
        run.say("confirm", summary=_summary(draft), place=place, category=category)
    else:
        run.say("confirm_plain", summary=_summary(draft), place=place)


# ---- filing ------------------------------------------------------------------------------------


def _draft_effect(run: _Step, draft: DraftState, medium: str) -> api.Draft:
    return api.Draft(
        tracking_code=run.tracking_code(),
        description=draft.description,
        place=draft.place,
        attachments=tuple(draft.attachments),
        category=draft.category or FALLBACK,
        category_confidence=draft.confidence,
        anonymous=draft.anonymous,
        language=run.lang,
        medium=medium,
    )


def _record_filed(run: _Step, code: str, draft: DraftState, at: datetime) -> None:
    state = run.state
    state.filed.insert(0, Filed(code=code, at=at, fingerprint=print_of(fold_text(draft.description))))
    del state.filed[MAX_FILED:]
    state.draft = None
    state.anonymous_next = False
    state.awaiting_duplicates = False


def _submit(run: _Step, at: datetime) -> str:
    """File the draft with the context's fresh code (once per step: the code is used up)."""
    draft = run.state.draft
    assert draft is not None and not run.code_used
    run.code_used = True
    effect = _draft_effect(run, draft, run.state.medium or "web")
    run.emit(api.SubmitComplaint(draft=effect))
    _record_filed(run, effect.tracking_code, draft, at)
    return effect.tracking_code


def _say_submitted(run: _Step, code: str) -> None:
    url = _tracking_url(run.ctx.settings.tracking_url, code)
    if url and septets(render(run.lang, "submitted_url", code=code, url=url)) <= SEGMENT:
        run.say("submitted_url", code=code, url=url)
    else:
        run.say("submitted", code=code)


def _tracking_url(base: str | None, code: str) -> str | None:
    if not base:
        return None
    if "{code}" in base:
        return base.replace("{code}", code)
    return base.rstrip("/") + "/" + code


def _confirmed(run: _Step, turn: api.Turn) -> None:
    """YA to the confirmation: look for duplicates first (once), then file."""
    draft = run.state.draft
    assert draft is not None
    if draft.duplicates_checked:
        _say_submitted(run, _submit(run, turn.at))
        return
    run.state.awaiting_duplicates = True
    run.emit(api.FindDuplicates(category=draft.category or FALLBACK, place=draft.place))


def _on_duplicate_answer(run: _Step, answer: api.DuplicateAnswer) -> None:
    state = run.state
    draft = state.draft
    if draft is None or not state.awaiting_duplicates:
        return
    state.awaiting_duplicates = False
    draft.duplicates_checked = True
    own = {f.code for f in state.filed}
    candidates = [c for c in answer.candidates if c.code not in own]
    if not candidates:
        _say_submitted(run, _submit(run, answer.at))
        return
    best = candidates[0]
    draft.duplicate_of = best.code
    draft.duplicate_summary = best.summary
    run.say("ask_duplicate", code=best.code, summary=best.summary)


def _answer_duplicate(run: _Step, yes: bool, turn: api.Turn) -> None:
    draft = run.state.draft
    assert draft is not None and draft.duplicate_of
    code = draft.duplicate_of
    draft.duplicate_of = None
    if yes:
        run.code_used = True
        run.emit(api.JoinComplaint(code=code, draft=_draft_effect(run, draft, run.state.medium or "web")))
        _record_filed(run, code, draft, turn.at)
        run.say("joined", code=code)
    else:
        _say_submitted(run, _submit(run, turn.at))


# ---- commands ------------------------------------------------------------------------------------


def _on_command(run: _Step, command: Command, turn: api.Turn) -> None:
    state = run.state
    stage = stage_of(state)
    name = command.name
    if name is CommandName.CANCEL:
        if state.draft is None:
            run.say("nothing_to_cancel")
        else:
            state.draft = None
            run.say("cancelled")
    elif name is CommandName.SKIP:
        _skip(run, stage)
    elif name is CommandName.HELP:
        run.say("help")
        if state.draft is not None:
            _prompt(run, stage, again=False)
    elif name is CommandName.STATUS:
        if command.codes:
            state.awaiting_status = True
            run.emit(api.LookupStatus(codes=command.codes))
        elif command.argument:
            run.say("status_bad_code", text=command.argument)
        else:
            state.awaiting_status = True
            run.emit(api.LookupStatus(codes=()))
    elif name is CommandName.NEW:
        _start_new(run, command, turn)
    elif name is CommandName.ANONYMOUS:
        if state.draft is None:
            state.anonymous_next = True
            run.say("anonymous_next")
        else:
            state.draft.anonymous = True
            run.say("anonymous_on")
            _prompt(run, stage, again=False)
    elif name in (CommandName.ENGLISH, CommandName.INDONESIAN):
        state.language = "en" if name is CommandName.ENGLISH else "id"
        state.language_chosen = True
        run.say("language_set")
        if state.draft is not None:
            _prompt(run, stage, again=False)


def _skip(run: _Step, stage: Stage) -> None:
    draft = run.state.draft
    if draft is None:
        run.say("nothing_to_skip")
    elif stage is Stage.PHOTO:
        draft.photo_skipped = True
        _prompt(run, stage_of(run.state), again=False)
    elif stage is Stage.LOCATION:
        run.say("cannot_skip_location")
    elif stage is Stage.DESCRIPTION:
        run.say("cannot_skip_description")
    else:
        _prompt(run, stage, again=True)


def _start_new(run: _Step, command: Command, turn: api.Turn) -> None:
    """BARU: file the open draft if it has enough (never drop words silently), then start afresh."""
    state = run.state
    draft = state.draft
    if draft is not None and has_enough(draft) and draft.duplicate_of is None:
        code = _submit(run, turn.at)
        run.say("new_after_submit", code=code)
    elif draft is not None and has_enough(draft):
        run.say("new_after_submit", code=_submit(run, turn.at))
    elif draft is not None:
        state.draft = None
        run.say("new_discarded", summary=_summary(draft) or "-")
    if not command.argument or not _meaningful(command.argument):
        if draft is None:
            run.say("new_started")
        return
    state.draft = DraftState(started_at=turn.at, anonymous=state.anonymous_next)
    _fill(run, api.Turn(medium=turn.medium, at=turn.at, text=command.argument), command.argument,
          Stage.DESCRIPTION)


# ---- clock -------------------------------------------------------------------------------------


def _on_tick(run: _Step, tick: api.Tick) -> None:
    """Remind once, then expire: file a draft with enough, otherwise keep it and say so."""
    state = run.state
    draft = state.draft
    settings = run.ctx.settings
    if draft is None or draft.expired or state.last_activity is None:
        return
    idle = tick.at - state.last_activity
    stage = stage_of(state)
    if idle >= settings.expire_after:
        state.awaiting_duplicates = False
        if has_enough(draft):
            summary = _summary(draft)
            draft.duplicate_of = None
            code = _submit(run, tick.at)
            run.say("expired_submitted", summary=summary, code=code)
        else:
            draft.expired = True
            key = "expired_kept_location" if stage is Stage.LOCATION else "expired_kept_description"
            run.say(key, summary=_summary(draft))
        return
    if not state.reminded and idle >= settings.reminder_after:
        state.reminded = True
        if stage is Stage.DUPLICATE:
            run.say("remind_duplicate", code=draft.duplicate_of or "")
        else:
            run.say(f"remind_{stage.value}", summary=_summary(draft))


# ---- status ------------------------------------------------------------------------------------


def _on_status_answer(run: _Step, answer: api.StatusAnswer) -> None:
    run.state.awaiting_status = False
    if not answer.found:
        if answer.requested_codes:
            run.say("status_not_found", code=answer.requested_codes[0])
        else:
            run.say("status_none_open")
        return
    for info in answer.found[:STATUS_LIST_LIMIT]:
        _say_status(run, info)
    if len(answer.found) > STATUS_LIST_LIMIT:
        run.say("status_more", count=len(answer.found) - STATUS_LIST_LIMIT)


def _status_label(run: _Step, status: str) -> str:
    key = f"status.{status}"
    from conversation.catalog import has

    return render(run.lang, key if has(run.lang, key) else "status.unknown")


def _say_status(run: _Step, info: api.ComplaintInfo) -> None:
    label = _status_label(run, info.status)
    summary = info.summary or "-"
    if info.updated_at is None:
        run.say("status_item", code=info.code, status=label, summary=summary)
    elif info.department:
        run.say("status_item_dept", code=info.code, status=label, department=info.department,
                updated=local_time(info.updated_at), summary=summary)
    else:
        run.say("status_item_updated", code=info.code, status=label, updated=local_time(info.updated_at),
                summary=summary)
