"""Named guards: the questions the machine asks about a draft before deciding what to say next.

Kept apart from the transitions so each rule has a name a test (and a reader) can point at.
"""

from __future__ import annotations

from conversation.categories import FALLBACK, SLUGS, needs_location
from conversation.state import ConversationState, DraftState, Stage

# Channels where a citizen can send a picture from the same thread.
MEDIA_CHANNELS = frozenset({"whatsapp", "telegram", "web"})


def has_description(draft: DraftState) -> bool:
    return bool(draft.description.strip())


def has_location(draft: DraftState) -> bool:
    return bool(draft.place_text) or draft.latitude is not None


def location_required(draft: DraftState) -> bool:
    """A KTP or tax complaint is about a document, not a place: no need to ask where."""
    return needs_location(draft.category)


def has_photo(draft: DraftState) -> bool:
    return bool(draft.attachments)


def photo_wanted(draft: DraftState, medium: str | None) -> bool:
    """Ask for a photo only where one can be sent, and only in a conversation that already needed a
    question: a message that said what and where goes straight to one confirmation."""
    return medium in MEDIA_CHANNELS and draft.asked > 0 and not draft.photo_skipped and not has_photo(draft)


def has_enough(draft: DraftState) -> bool:
    """Enough to file: what, and where when the category needs a place."""
    return has_description(draft) and (has_location(draft) or not location_required(draft))


def plain_stage_of(state: ConversationState) -> Stage:
    """The stage follows from the slots, so a state can never claim a question its draft answered."""
    draft = state.draft
    if draft is None:
        return Stage.IDLE
    if draft.duplicate_of:
        return Stage.DUPLICATE
    if not has_description(draft):
        return Stage.DESCRIPTION
    if location_required(draft) and not has_location(draft):
        return Stage.LOCATION
    if photo_wanted(draft, state.medium):
        return Stage.PHOTO
    return Stage.CONFIRMATION


# Whether a category needs a place, by slug (`needs_location`: a slug not listed needs one).
_NEEDS_LOCATION = {slug: needs_location(slug) for slug in SLUGS}


def stage_of(state: ConversationState) -> Stage:
    """`plain_stage_of`, the guards read in place: a step asks it three times or more, and each
    guard was a call (tests hold it to the plain rule)."""
    draft = state.draft
    if draft is None:
        return Stage.IDLE
    if draft.duplicate_of:
        return Stage.DUPLICATE
    if not draft.description.strip():
        return Stage.DESCRIPTION
    unplaced = not draft.place_text and draft.latitude is None
    if unplaced and _NEEDS_LOCATION.get(draft.category or FALLBACK, True):
        return Stage.LOCATION
    wants_photo = draft.asked > 0 and not draft.photo_skipped and not draft.attachments
    if wants_photo and state.medium in MEDIA_CHANNELS:
        return Stage.PHOTO
    return Stage.CONFIRMATION
