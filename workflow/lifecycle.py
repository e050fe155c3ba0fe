"""The complaint lifecycle as a guarded transition table, and the one service that moves complaints.

    draft -> submitted -> verified -> forwarded -> in_progress -> resolved -> closed
    side exits: rejected (reason required), duplicate (linked to the original), reopened

`TRANSITIONS` is the whole machine as data: which statuses an action may start from and where it
leads (None: the status stays, e.g. a progress note). `apply` refuses anything else with a
`TransitionError` that says what was tried and what would have been allowed, checks the actor's
permission (workflow.access), checks the action's own guards (a reason to reject, evidence to
resolve...), and then writes, in the caller's transaction: the status change (a conditional UPDATE, so
two officers clicking at once cannot both win), the audit event(s), the deadlines, the citizen's status
message on the origin channel, and the staff notifications. `Workflow.transition` is the async entry
point; `apply` is for callers already inside a transaction (the intake pipeline, the deadline jobs).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from store import models
from store.db import Database
from store.models import ComplaintStatus as S
from workflow import notify
from workflow.access import Action, Actor, Role, Scope, require
from workflow.messages import due_text
from workflow.settings import WorkflowSettings

OPEN = frozenset({S.SUBMITTED, S.VERIFIED, S.FORWARDED, S.IN_PROGRESS, S.REOPENED})
WITH_DEPARTMENT = frozenset({S.FORWARDED, S.IN_PROGRESS, S.REOPENED})
VERIFYING = frozenset({S.SUBMITTED, S.VERIFIED})
TERMINAL = frozenset({S.CLOSED, S.REJECTED, S.DUPLICATE})


@dataclass(frozen=True, slots=True)
class Rule:
    sources: frozenset[S]
    target: S | None
    """None: the status stays (notes, replies, pauses); the event is still written."""


TRANSITIONS: Mapping[Action, Rule] = MappingProxyType(
    {
        Action.SUBMIT: Rule(frozenset({S.DRAFT}), S.SUBMITTED),
        Action.VERIFY: Rule(frozenset({S.SUBMITTED}), S.VERIFIED),
        Action.CLASSIFY: Rule(frozenset({S.SUBMITTED, S.VERIFIED, S.REOPENED}), None),
        Action.FORWARD: Rule(frozenset({S.VERIFIED, S.FORWARDED, S.IN_PROGRESS, S.REOPENED}), S.FORWARDED),
        Action.REJECT: Rule(VERIFYING, S.REJECTED),
        Action.MARK_DUPLICATE: Rule(frozenset({S.SUBMITTED, S.VERIFIED, S.FORWARDED}), S.DUPLICATE),
        Action.REPLY: Rule(OPEN | {S.RESOLVED}, None),
        Action.ACCEPT: Rule(frozenset({S.FORWARDED, S.REOPENED}), S.IN_PROGRESS),
        Action.UPDATE: Rule(OPEN, None),
        Action.ASK_REPORTER: Rule(frozenset({S.SUBMITTED, S.VERIFIED, S.IN_PROGRESS}), None),
        Action.RESUME: Rule(frozenset({S.SUBMITTED, S.VERIFIED, S.IN_PROGRESS}), None),
        Action.REQUEST_COORDINATION: Rule(frozenset({S.FORWARDED, S.IN_PROGRESS}), None),
        Action.RESOLVE: Rule(frozenset({S.IN_PROGRESS}), S.RESOLVED),
        Action.REOPEN: Rule(frozenset({S.RESOLVED, S.CLOSED}), S.REOPENED),
        Action.CLOSE: Rule(frozenset({S.RESOLVED}), S.CLOSED),
    }
)
LIFECYCLE_ACTIONS = tuple(TRANSITIONS)
SCOPES = ("single", "coordination", "agency")
CLOSE_REASONS = ("citizen", "timeout", "admin")


class TransitionError(Exception):
    """A transition that was refused; the message is fit to show the officer."""


class IllegalTransition(TransitionError):
    pass


class MissingInput(TransitionError):
    pass


class ComplaintNotFound(TransitionError):
    pass


class Conflict(TransitionError):
    """Someone else changed the complaint between our read and our write; reload and retry."""


@dataclass(frozen=True)
class Change:
    """One requested transition and everything it may need."""

    action: Action
    actor: Actor
    note: str | None = None
    """Internal note: staff only."""
    public_note: str | None = None
    """What the citizen is told (and the tracking page shows)."""
    evidence: Sequence[Mapping[str, Any] | str] = ()
    departments: Sequence[str] = ()
    scope: str | None = None
    category: str | None = None
    confidential: bool | None = None
    duplicate_of: str | None = None
    close_reason: str = "admin"


@dataclass(frozen=True)
class Outcome:
    code: str
    action: Action
    from_status: str
    to_status: str
    due_at: datetime | None
    citizen_messages: int
    staff_notified: int
    departments: tuple[str, ...] = field(default=())


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text or None


def _evidence(items: Sequence[Mapping[str, Any] | str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        entry = {"url": item} if isinstance(item, str) else dict(item)
        if not str(entry.get("url") or "").strip():
            raise MissingInput("evidence must be a media reference (a stored photo or file)")
        out.append(entry)
    return out


def load_departments(conn: Connection, complaint_id: int) -> tuple[str, ...]:
    table = models.complaint_departments
    rows = conn.execute(
        select(table.c.department)
        .where(table.c.complaint_id == complaint_id)
        .order_by(table.c.lead.desc(), table.c.id)
    )
    return tuple(code for (code,) in rows)


def _load(conn: Connection, code: str) -> Any:
    table = models.complaints
    query = select(table).where(table.c.tracking_code == code)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    if row is None:
        raise ComplaintNotFound(f"no complaint {code}")
    return row


def apply(conn: Connection, code: str, change: Change, settings: WorkflowSettings, now: datetime) -> Outcome:
    """Carry out `change` on complaint `code` inside the caller's transaction (see module docstring)."""
    complaint = _load(conn, code)
    action = Action(change.action)
    rule = TRANSITIONS.get(action)
    if rule is None:
        raise IllegalTransition(f"{action} is not a lifecycle action")
    status = S(complaint.status)
    if status not in rule.sources:
        allowed = ", ".join(sorted(rule.sources))
        raise IllegalTransition(f"cannot {action} complaint {code}: it is {status}; {action} needs {allowed}")
    departments = load_departments(conn, complaint.id)
    require(change.actor, action, Scope(frozenset(departments)))
    plan = _Plan(conn, complaint, change, settings, now, departments)
    plan.guard_and_compute()
    target = rule.target or status
    values: dict[str, Any] = {"status": target.value, "updated_at": now, **plan.values}
    table = models.complaints
    updated = conn.execute(
        update(table).where(table.c.id == complaint.id, table.c.status == status.value).values(**values)
    )
    if updated.rowcount != 1:
        raise Conflict(f"complaint {code} changed meanwhile; reload it")
    plan.write_links()
    _write_events(conn, complaint.id, status, target, change, plan.evidence, now)
    fresh = conn.execute(select(table).where(table.c.id == complaint.id)).one()
    sent = 0
    if plan.citizen_key is not None:
        sent = notify.tell_citizens(conn, fresh, plan.citizen_key, plan.citizen_params, now, settings)
    notified = 0
    for users, key, params in plan.staff:
        notified += notify.tell_staff(conn, users, complaint.id, key, params, now, settings)
    return Outcome(
        code=code,
        action=action,
        from_status=status.value,
        to_status=target.value,
        due_at=fresh.due_at,
        citizen_messages=sent,
        staff_notified=notified,
        departments=plan.departments,
    )


def _write_events(
    conn: Connection,
    complaint_id: int,
    source: S,
    target: S,
    change: Change,
    evidence: list[dict[str, Any]] | None,
    now: datetime,
) -> None:
    public_note, note = _clean(change.public_note), _clean(change.note)
    rows: list[dict[str, Any]] = []
    base = {"complaint_id": complaint_id, "actor": change.actor.name, "action": change.action.value}
    if target != source or public_note is not None or evidence:
        rows.append(
            {
                **base,
                "from_status": source.value,
                "to_status": target.value,
                "note": public_note,
                "public": True,
                "evidence": evidence,
                "created_at": now,
            }
        )
    if note is not None or not rows:
        rows.append(
            {
                **base,
                "from_status": target.value if rows else source.value,
                "to_status": target.value,
                "note": note,
                "public": False,
                "evidence": None,
                "created_at": now,
            }
        )
    conn.execute(models.status_events.insert(), rows)


class _Plan:
    """The guards and effects of one action: column values, links, messages. Pure reads only until
    `write_links`, so a refused guard leaves the transaction untouched."""

    def __init__(
        self,
        conn: Connection,
        complaint: Any,
        change: Change,
        settings: WorkflowSettings,
        now: datetime,
        departments: tuple[str, ...],
    ) -> None:
        self.conn, self.complaint, self.change, self.settings, self.now = (
            conn,
            complaint,
            change,
            settings,
            now,
        )
        self.departments = departments
        self.values: dict[str, Any] = {}
        self.evidence: list[dict[str, Any]] | None = None
        self.citizen_key: str | None = None
        self.citizen_params: dict[str, object] = {"code": complaint.tracking_code}
        self.staff: list[tuple[list[Any], str, dict[str, object]]] = []
        self._new_departments: tuple[str, ...] | None = None
        self._original: Any = None

    # ---- helpers ------------------------------------------------------------------------

    def _add(self, days: int, start: datetime | None = None) -> datetime:
        return self.settings.calendar.add_working_days(start or self.now, days)

    def _need(self, value: str | None, what: str) -> str:
        text = _clean(value)
        if text is None:
            raise MissingInput(f"{self.change.action} needs {what}")
        return text

    def _category(self, slug: str) -> Any:
        table = models.categories
        row = self.conn.execute(select(table).where(table.c.slug == slug)).one_or_none()
        if row is None or not row.active:
            raise MissingInput(f"unknown category {slug!r}")
        return row

    def _staff_params(self, departments: tuple[str, ...]) -> dict[str, object]:
        return {
            "code": self.complaint.tracking_code,
            "category": self.values.get("category", self.complaint.category) or "",
            "department_codes": departments,
            "due": due_text(self.values.get("due_at", self.complaint.due_at)),
        }

    # ---- per action -----------------------------------------------------------------------

    def guard_and_compute(self) -> None:
        change = self.change
        if change.confidential is not None and change.actor.role == Role.ADMIN:
            self.values["confidential"] = change.confidential
        getattr(self, f"_{change.action.value}")()

    def _submit(self) -> None:
        self.values["verify_due_at"] = self._add(self.settings.verify_days, self.complaint.created_at)

    def _verify(self) -> None:
        if self.change.category:
            self.values["category"] = self._category(self.change.category).slug
        if self.complaint.verify_due_at is None:
            self._submit()
        self.citizen_key = "verify"

    def _classify(self) -> None:
        if not self.change.category and self.change.confidential is None:
            raise MissingInput("classify needs a category (or the confidential flag)")
        if self.change.category:
            self.values["category"] = self._category(self.change.category).slug

    def _forward(self) -> None:
        change = self.change
        category = self.complaint.category
        if change.category:
            category = self.values["category"] = self._category(change.category).slug
        wanted = tuple(dict.fromkeys(d.strip() for d in change.departments if d.strip()))
        rule_scope = "single"
        if category:
            routed = self._category(category) if category else None
            if routed is not None:
                rule_scope = routed.sla_scope or "single"
                if not wanted and routed.department:
                    wanted = (routed.department,)
        if not wanted:
            raise MissingInput(f"forward needs a department: category {category or '-'} has no routing rule")
        table = models.departments
        known = {
            code
            for code, active in self.conn.execute(
                select(table.c.code, table.c.active).where(table.c.code.in_(wanted))
            )
            if active
        }
        unknown = [d for d in wanted if d not in known]
        if unknown:
            raise MissingInput(f"unknown or inactive department: {', '.join(unknown)}")
        scope = change.scope or ("coordination" if len(wanted) > 1 else rule_scope)
        if scope not in SCOPES:
            raise MissingInput(f"scope must be one of {', '.join(SCOPES)}")
        keep_start = self.complaint.status in (S.FORWARDED, S.IN_PROGRESS) and self.complaint.forwarded_at
        start = self.complaint.forwarded_at if keep_start else self.now
        self.values.update(
            department=wanted[0],
            sla_scope=scope,
            forwarded_at=start,
            due_at=self._add(self.settings.days_for(scope), start),
            escalation_level=0,
            escalated_at=None,
            paused_at=None,
        )
        self._new_departments = wanted
        added = tuple(d for d in wanted if d not in self.departments)
        self.departments = wanted
        self.citizen_key = "forward"
        self.citizen_params.update(department_codes=wanted, due=due_text(self.values["due_at"]))
        if added:
            users = notify.staff(self.conn, roles=(Role.OFFICER, Role.HEAD), departments=added)
            self.staff.append((users, "forward", self._staff_params(added)))

    def _reject(self) -> None:
        reason = self._need(self.change.public_note, "a reason the citizen can read (public_note)")
        self.values["closed_at"] = self.now
        self.citizen_key = "reject"
        self.citizen_params["note"] = reason

    def _mark_duplicate(self) -> None:
        code = self._need(self.change.duplicate_of, "the original complaint's code (duplicate_of)")
        table = models.complaints
        original = self.conn.execute(
            select(table.c.id, table.c.tracking_code, table.c.status).where(table.c.tracking_code == code)
        ).one_or_none()
        if original is None:
            raise MissingInput(f"no complaint {code} to link the duplicate to")
        if original.id == self.complaint.id:
            raise MissingInput("a complaint cannot duplicate itself")
        if original.status in (S.DUPLICATE, S.REJECTED, S.DRAFT):
            raise MissingInput(f"{code} is {original.status}; link to the complaint that is being handled")
        self._original = original
        self.values.update(duplicate_of_id=original.id, closed_at=self.now)
        self.citizen_key = "mark_duplicate"
        self.citizen_params["original"] = original.tracking_code

    def _reply(self) -> None:
        self.citizen_params["note"] = self._need(self.change.public_note, "the text for the citizen")
        self.citizen_key = "reply"

    def _accept(self) -> None:
        if not self.departments:
            raise MissingInput("accept needs the complaint forwarded to a department first")
        if self.complaint.due_at is None:
            self.values["due_at"] = self._add(self.settings.days_for(self.complaint.sla_scope))
        self.citizen_key = "accept"
        self.citizen_params.update(
            department_codes=self.departments, due=due_text(self.values.get("due_at", self.complaint.due_at))
        )

    def _update(self) -> None:
        if _clean(self.change.note) is None and _clean(self.change.public_note) is None:
            raise MissingInput("update needs a note (internal) or a public_note (for the citizen)")
        if _clean(self.change.public_note) is not None:
            self.citizen_key = "update"
            self.citizen_params["note"] = _clean(self.change.public_note)

    def _ask_reporter(self) -> None:
        if self.complaint.paused_at is not None:
            raise IllegalTransition(f"{self.complaint.tracking_code} is already waiting for the reporter")
        self.citizen_params["note"] = self._need(self.change.public_note, "the question for the reporter")
        self.citizen_key = "ask_reporter"
        self.values["paused_at"] = self.now

    def _resume(self) -> None:
        paused_at = self.complaint.paused_at
        if paused_at is None:
            raise IllegalTransition(f"{self.complaint.tracking_code} is not waiting for the reporter")
        shift = self.settings.calendar.working_days_between(paused_at, self.now)
        self.values["paused_at"] = None
        if shift > 0:
            if self.complaint.due_at is not None and self.complaint.status not in VERIFYING:
                self.values["due_at"] = self._add(shift, self.complaint.due_at)
            if self.complaint.verify_due_at is not None and self.complaint.status in VERIFYING:
                self.values["verify_due_at"] = self._add(shift, self.complaint.verify_due_at)

    def _request_coordination(self) -> None:
        note = self._need(self.change.note, "a note saying which department is needed and why")
        admins = notify.staff(self.conn, roles=(Role.ADMIN,))
        params = self._staff_params((self.change.actor.department or "-",))
        params["note"] = note
        self.staff.append((admins, "request_coordination", params))

    def _resolve(self) -> None:
        evidence = _evidence(self.change.evidence)
        if not evidence:
            raise MissingInput("resolve needs evidence: a photo or document of the finished work")
        self.evidence = evidence
        self.values.update(
            resolved_at=self.now,
            feedback_due_at=self._add(self.settings.close_after_days),
            paused_at=None,
        )
        note = _clean(self.change.public_note)
        self.citizen_key = "resolve" if note else "resolve_plain"
        self.citizen_params.update(note=note or "", department_codes=self.departments)

    def _reopen(self) -> None:
        reason = _clean(self.change.public_note) or _clean(self.change.note)
        if reason is None:
            raise MissingInput("reopen needs a reason")
        scope = self.complaint.sla_scope
        self.values.update(
            resolved_at=None,
            closed_at=None,
            feedback_due_at=None,
            forwarded_at=self.now if self.departments else self.complaint.forwarded_at,
            due_at=self._add(self.settings.days_for(scope)) if self.departments else None,
            escalation_level=0,
            escalated_at=None,
            reopen_count=self.complaint.reopen_count + 1,
        )
        self.citizen_key = "reopen"
        if self.departments:
            users = notify.staff(self.conn, roles=(Role.OFFICER, Role.HEAD), departments=self.departments)
            params = self._staff_params(self.departments)
            params["note"] = reason
            self.staff.append((users, "reopen", params))

    def _close(self) -> None:
        reason = self.change.close_reason
        if reason not in CLOSE_REASONS:
            raise MissingInput(f"close_reason must be one of {', '.join(CLOSE_REASONS)}")
        self.values.update(closed_at=self.now, feedback_due_at=None)
        self.citizen_key = {"citizen": "close", "timeout": "close_timeout", "admin": "close_admin"}[reason]

    # ---- writes after the status update ---------------------------------------------------

    def write_links(self) -> None:
        if self._new_departments is not None:
            self._write_departments(self._new_departments)
        if self._original is not None:
            self._follow_original()

    def _write_departments(self, wanted: tuple[str, ...]) -> None:
        table = models.complaint_departments
        cid = self.complaint.id
        self.conn.execute(delete(table).where(table.c.complaint_id == cid, table.c.department.not_in(wanted)))
        existing = set(load_departments(self.conn, cid))
        for index, code in enumerate(wanted):
            if code in existing:
                self.conn.execute(
                    update(table)
                    .where(table.c.complaint_id == cid, table.c.department == code)
                    .values(lead=index == 0)
                )
            else:
                self.conn.execute(
                    table.insert().values(
                        complaint_id=cid, department=code, lead=index == 0, created_at=self.now
                    )
                )

    def _follow_original(self) -> None:
        """The duplicate's reporter (and followers) now hear about the original complaint."""
        table = models.complaint_followers
        original_id = self._original.id
        wanted: list[dict[str, Any]] = []
        if self.complaint.origin_identity_id is not None:
            wanted.append(
                {
                    "reporter_id": self.complaint.reporter_id,
                    "identity_id": self.complaint.origin_identity_id,
                    "channel": self.complaint.origin_channel,
                }
            )
        for reporter_id, identity_id, channel in self.conn.execute(
            select(table.c.reporter_id, table.c.identity_id, table.c.channel).where(
                table.c.complaint_id == self.complaint.id
            )
        ):
            wanted.append({"reporter_id": reporter_id, "identity_id": identity_id, "channel": channel})
        owner = self.conn.execute(
            select(models.complaints.c.reporter_id).where(models.complaints.c.id == original_id)
        ).scalar_one()
        present = {
            rid
            for (rid,) in self.conn.execute(
                select(table.c.reporter_id).where(table.c.complaint_id == original_id)
            )
        } | {owner}
        for row in wanted:
            if row["reporter_id"] in present:
                continue
            present.add(row["reporter_id"])
            self.conn.execute(table.insert().values(complaint_id=original_id, created_at=self.now, **row))


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Workflow:
    """The async service the dashboard calls: `await workflow.transition(code, action, actor, ...)`."""

    def __init__(
        self,
        db: Database,
        settings: WorkflowSettings,
        *,
        clock: Callable[[], datetime] = _utcnow,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._on_committed = on_committed

    async def transition(
        self,
        code: str,
        action: Action | str,
        actor: Actor,
        *,
        note: str | None = None,
        public_note: str | None = None,
        evidence: Sequence[Mapping[str, Any] | str] = (),
        departments: Sequence[str] = (),
        scope: str | None = None,
        category: str | None = None,
        confidential: bool | None = None,
        duplicate_of: str | None = None,
        close_reason: str = "admin",
        now: datetime | None = None,
    ) -> Outcome:
        try:
            act = Action(action)
        except ValueError:
            raise IllegalTransition(f"unknown action {action!r}") from None
        change = Change(
            act,
            actor,
            note=note,
            public_note=public_note,
            evidence=tuple(evidence),
            departments=tuple(departments),
            scope=scope,
            category=category,
            confidential=confidential,
            duplicate_of=duplicate_of,
            close_reason=close_reason,
        )
        moment = now or self.clock()
        outcome = await self.db.run(
            functools.partial(apply, code=code, change=change, settings=self.settings, now=moment)
        )
        if (outcome.citizen_messages or outcome.staff_notified) and self._on_committed is not None:
            self._on_committed()
        return outcome


async def transition(
    db: Database,
    code: str,
    action: Action | str,
    actor: Actor,
    *,
    settings: WorkflowSettings | None = None,
    now: datetime | None = None,
    **kwargs: Any,
) -> Outcome:
    """`Workflow(db, settings).transition(...)` for one-off callers (CLI, tests)."""
    return await Workflow(db, settings or WorkflowSettings()).transition(
        code, action, actor, now=now, **kwargs
    )
