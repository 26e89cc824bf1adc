"""Pure policies: placement, retry, failure classification, overdue sweep.

Every function here is a function of its arguments only. Nothing reads the clock, the
database or a global random generator: ``today`` and ``rng`` are passed in, so each policy
is tested with a table of cases. Nothing here imports the rest of provisiond; statuses are
compared as strings, which also matches the ``str`` Enums in ``models``.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import random
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Literal

# --------------------------------------------------------------------------- placement


class Strategy(str, enum.Enum):
    """How a server group picks the server for a new account."""

    LEAST_LOADED = "least-loaded"
    FILL_UNTIL_FULL = "fill-until-full"
    ROUND_ROBIN = "round-robin"
    LEAST_DISK = "least-disk"


@dataclasses.dataclass(frozen=True)
class ServerLoad:
    """A server as placement sees it; ``placed`` counts active + pending accounts."""

    id: int
    name: str
    enabled: bool
    healthy: bool
    max_accounts: int
    placed: int
    panel: str = ""
    # MB used by its accounts at their latest usage collection; None: never collected.
    disk_used_mb: float | None = None

    @property
    def has_room(self) -> bool:
        """Enabled, healthy and below ``max_accounts`` (``max_accounts <= 0``: no room)."""
        return self.enabled and self.healthy and 0 <= self.placed < self.max_accounts


def place(
    servers: Sequence[ServerLoad], strategy: Strategy, last_server_id: int | None = None,
    panel: str | None = None,
) -> ServerLoad | None:
    """Pick the server for a new account, or None when no server has room.

    Only servers with room are candidates (see ``ServerLoad.has_room``), and with ``panel``
    only servers of that panel: a product's panel is the server's panel.

    - least-loaded: lowest ``placed / max_accounts`` (exact fractions); ties go to the
      lowest ``placed``, then the lowest id.
    - fill-until-full: the lowest id with room. Servers are packed in id order, so a new
      server (higher id) only receives accounts once the older ones are full.
    - round-robin: the first server with room whose id is greater than ``last_server_id``,
      in id order, wrapping around to the lowest id; with no ``last_server_id``, the lowest.
    - least-disk: the lowest ``disk_used_mb``, the disk its accounts used at their latest
      usage collection (panels report what each account uses, not the server's free disk,
      so the sum of the accounts' use is the figure every panel can give). A server never
      collected counts as 0 MB when it holds no account (a new server is the emptiest), and
      otherwise ranks after every measured server, since its use is unknown. Ties go as
      least-loaded does.

    Deterministic: the order of ``servers`` does not matter.
    """
    candidates = sorted((s for s in servers if s.has_room and panel in (None, s.panel)),
                        key=lambda s: s.id)
    if not candidates:
        return None
    strategy = Strategy(strategy)
    if strategy is Strategy.LEAST_LOADED:
        return min(candidates, key=lambda s: (Fraction(s.placed, s.max_accounts), s.placed, s.id))
    if strategy is Strategy.LEAST_DISK:
        return min(candidates, key=lambda s: (s.disk_used_mb is None and s.placed > 0, s.disk_used_mb or 0,
                                              Fraction(s.placed, s.max_accounts), s.placed, s.id))
    if strategy is Strategy.FILL_UNTIL_FULL:
        return candidates[0]
    if last_server_id is not None:
        for server in candidates:
            if server.id > last_server_id:
                return server
    return candidates[0]


# --------------------------------------------------------------------------- failures


class FailureKind(str, enum.Enum):
    """Whether trying the same thing again later may succeed."""

    TRANSIENT = "transient"
    PERMANENT = "permanent"


# Network trouble and a panel saying "not now". Anything else is the panel refusing.
_TRANSIENT_MESSAGE = re.compile(
    r"timed out|timeout|unreachable|no route to host"
    r"|connection (refused|reset|aborted)|broken pipe"
    r"|name or service not known|name resolution|could not resolve|nodename nor servname"
    r"|\bbusy\b|try again|temporarily|\blocked\b|load average|too many requests",
    re.IGNORECASE,
)


_TRUST_FAILURE = re.compile(
    r"REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|Permission denied \(publickey")


def classify(
    message: str,
    http_status: int | None = None,
    timed_out: bool = False,
    unreachable: bool = False,
) -> FailureKind:
    """Tell a failure worth retrying (TRANSIENT) from a refusal (PERMANENT).

    Transient: a timeout, an unreachable host, HTTP 5xx or 429, or a message about the
    network (connection refused/reset, name resolution) or a busy panel ("busy",
    "try again", "temporarily", "locked", "load average"). An HTTP 4xx other than 429 is
    permanent whatever the message says (401/403: wrong credentials will not fix
    themselves). Everything else is permanent: the panel rejected the request. An SSH host
    that is reachable but shows another host key, or refuses our key, is permanent too: no
    retry makes a pinned key match or an unauthorised key welcome.
    """
    if _TRUST_FAILURE.search(message or ""):
        return FailureKind.PERMANENT
    if timed_out or unreachable:
        return FailureKind.TRANSIENT
    if http_status is not None:
        if http_status == 429 or 500 <= http_status <= 599:
            return FailureKind.TRANSIENT
        if 400 <= http_status <= 499:
            return FailureKind.PERMANENT
    if _TRANSIENT_MESSAGE.search(message or ""):
        return FailureKind.TRANSIENT
    return FailureKind.PERMANENT


# --------------------------------------------------------------------------- retry


def _frozen_mapping(pairs: Mapping[str, int]) -> Mapping[str, int]:
    return types.MappingProxyType(dict(pairs))


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with equal jitter, for transient failures only.

    For the n-th attempt that failed (n >= 1)::

        d     = min(cap, base * factor ** (n - 1))
        delay = d / 2 + uniform(0, d / 2)

    so the delay lies in ``[d/2, d]``: never shorter than half the backoff (no thundering
    retries), spread enough that many jobs failing together do not retry together. With
    the defaults: ~15-30 s, 30-60 s, 60-120 s, ... up to 15-30 min.

    A job is tried at most ``attempts_for(action)`` times in total: ``max_attempts``,
    or the per-action override (``terminate`` gives up sooner and leaves it to an admin).
    """

    base: float = 30
    factor: float = 2
    cap: float = 1800
    max_attempts: int = 6
    max_attempts_by_action: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: _frozen_mapping({"terminate": 3}), hash=False
    )

    def __post_init__(self) -> None:
        # A caller's dict is copied and frozen so the policy cannot change under us.
        object.__setattr__(
            self, "max_attempts_by_action", _frozen_mapping(self.max_attempts_by_action)
        )

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt}")
        try:
            # float power: a huge attempt overflows (caught) instead of building a huge int
            backoff = min(self.cap, self.base * float(self.factor) ** (attempt - 1))
        except OverflowError:
            backoff = self.cap
        return backoff / 2 + rng.uniform(0, backoff / 2)

    def attempts_for(self, action: str) -> int:
        """Total attempts allowed for ``action``."""
        return self.max_attempts_by_action.get(action, self.max_attempts)

    def next_step(
        self, action: str, attempts_done: int, failure_kind: FailureKind, rng: random.Random
    ) -> tuple[Literal["retry"], float] | tuple[Literal["fail"], None]:
        """After ``attempts_done`` attempts, the last one failed: retry later, or fail.

        ``("fail", None)`` for a permanent failure, or once
        ``attempts_done >= attempts_for(action)``; else ``("retry", delay(attempts_done))``.
        """
        if FailureKind(failure_kind) is FailureKind.PERMANENT:
            return ("fail", None)
        if attempts_done >= self.attempts_for(action):
            return ("fail", None)
        return ("retry", self.delay(max(attempts_done, 1), rng))


# --------------------------------------------------------------------------- overdue


# Ten years: beyond it a day count is a typo, and a date that far back does not exist.
MAX_DAYS = 3650


def resolve_days(
    product_suspend: int | None,
    product_terminate: int | None,
    default_suspend: int = 10,
    default_terminate: int = 45,
) -> tuple[int, int]:
    """(suspend_after_days, terminate_after_days): a product's override, else the default.

    Raises ValueError for a value outside 0..MAX_DAYS or a termination before the
    suspension, so a bad product override is refused when it is written, not found by the sweep.
    """
    suspend = default_suspend if product_suspend is None else product_suspend
    terminate = default_terminate if product_terminate is None else product_terminate
    if not (0 <= suspend <= MAX_DAYS and 0 <= terminate <= MAX_DAYS):
        raise ValueError(f"overdue days must be 0-{MAX_DAYS}, got suspend={suspend}, terminate={terminate}")
    if terminate < suspend:
        raise ValueError(f"terminate after {terminate} days comes before suspend after {suspend}")
    return suspend, terminate


@dataclasses.dataclass(frozen=True)
class OverdueFacts:
    """What the sweep needs to know about one service; days are already resolved."""

    service_id: int
    status: str  # pending | active | suspended | terminated | failed
    status_reason: str | None  # overdue | admin | abuse | None
    paid_until: datetime.date | None
    hold_until: datetime.date | None
    never_terminate: bool
    suspend_after_days: int
    terminate_after_days: int


@dataclasses.dataclass(frozen=True)
class Decision:
    """An action the sweep asks for: ``suspend`` or ``terminate``."""

    service_id: int
    action: str
    reason: str


def decide(facts: OverdueFacts, today: datetime.date) -> Decision | None:
    """The sweep's verdict for one service; see ``sweep``."""
    if facts.status not in ("active", "suspended") or facts.paid_until is None:
        return None
    if facts.hold_until is not None and facts.hold_until >= today:
        return None
    days_overdue = (today - facts.paid_until).days
    if facts.status == "active":
        # Suspended first, whatever the day count: a late suspension is never skipped.
        return Decision(facts.service_id, "suspend", "overdue") if days_overdue >= facts.suspend_after_days else None
    if (facts.status_reason == "overdue" and days_overdue >= facts.terminate_after_days
            and not facts.never_terminate):
        return Decision(facts.service_id, "terminate", f"overdue {days_overdue} days")
    return None


def sweep(services: Iterable[OverdueFacts], today: datetime.date) -> list[Decision]:
    """Suspend and terminate decisions for overdue services, in input order.

    ``days_overdue = (today - paid_until).days``. A service is left alone when it has no
    ``paid_until``, when ``hold_until >= today``, or when it is not active or suspended
    (pending, terminated and failed services are never touched).

    - suspend: an active service with ``days_overdue >= suspend_after_days``, whatever the
      day count (an active service is never terminated: it is suspended first, even when it
      is already past its terminate days, e.g. after a payment date was moved back).
      Reason: ``"overdue"``.
    - terminate: only a service suspended for non-payment (``status_reason == "overdue"``)
      with ``days_overdue >= terminate_after_days`` and not ``never_terminate``. A service
      suspended by an admin or for abuse is left to the admin. Reason: ``"overdue N days"``.
    """
    return [d for d in (decide(facts, today) for facts in services) if d is not None]


def on_payment(
    status: str, status_reason: str | None, paid_until: datetime.date, today: datetime.date
) -> str | None:
    """``"unsuspend"`` when a payment clears an overdue suspension, else None.

    Only a service suspended for being overdue, now paid until today or later. A service
    suspended by an admin or for abuse stays suspended: paying does not lift those.
    """
    if status == "suspended" and status_reason == "overdue" and paid_until >= today:
        return "unsuspend"
    return None
