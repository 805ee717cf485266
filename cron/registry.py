"""The cron registry: one frozen definition per cron (CONTRACT.md "Crons"), in one dict.

Routes, the admin, the commands, schedule sync and the docs iterate this registry; nothing lists
crons twice. Adding a cron is one ``register_cron`` call.
"""

import re
from dataclasses import dataclass, field

from croniter import croniter

NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class DuplicateCron(ValueError):
    pass


@dataclass(frozen=True)
class CronFunction:
    """A ledger function a cron enqueues, with its task id prefix (``bg-process``)."""

    name: str
    task_prefix: str


@dataclass(frozen=True)
class CronDefinition:
    """One cron.

    ``setting_prefix`` names its environment switches: ``<prefix>_USE_QUEUE``,
    ``<prefix>_DISPATCH_WINDOW_SECONDS`` and, where ``force_inline_switch``,
    ``<prefix>_FORCE_INLINE`` and ``<prefix>_INLINE_EMERGENCY_FALLBACK``.
    """

    name: str
    route: str
    functions: tuple[CronFunction, ...]
    window_seconds: int
    schedule: str
    allowed_params: frozenset[str] = frozenset()
    use_queue_default: bool = False
    setting_prefix: str = ""
    force_inline_switch: bool = False
    description: str = ""
    params_doc: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"cron name {self.name!r}: use lower-case words joined by '-'")
        if not self.functions:
            raise ValueError(f"cron {self.name!r} enqueues no function")
        if not 15 <= self.window_seconds <= 3600:
            raise ValueError(f"cron {self.name!r}: window_seconds must be within [15, 3600]")
        if not croniter.is_valid(self.schedule):
            raise ValueError(f"cron {self.name!r}: {self.schedule!r} is not a cron expression")
        if not self.setting_prefix:
            object.__setattr__(self, "setting_prefix", default_setting_prefix(self.name))

    @property
    def use_queue_setting(self) -> str:
        return f"{self.setting_prefix}_USE_QUEUE"

    @property
    def window_setting(self) -> str:
        return f"{self.setting_prefix}_DISPATCH_WINDOW_SECONDS"

    @property
    def force_inline_setting(self) -> str | None:
        return f"{self.setting_prefix}_FORCE_INLINE" if self.force_inline_switch else None

    @property
    def emergency_fallback_setting(self) -> str | None:
        if not self.force_inline_switch:
            return None
        return f"{self.setting_prefix}_INLINE_EMERGENCY_FALLBACK"

    @property
    def url_path(self) -> str:
        return f"/api/cron/{self.route}"


def default_setting_prefix(name: str) -> str:
    return "CRON_" + name.upper().replace("-", "_")


_crons: dict[str, CronDefinition] = {}


def register_cron(definition: CronDefinition) -> CronDefinition:
    for existing in _crons.values():
        if existing.name == definition.name or existing.route == definition.route:
            raise DuplicateCron(
                f"A cron named {existing.name!r} already uses the name or route of "
                f"{definition.name!r}; give the new cron its own name and route."
            )
    _crons[definition.name] = definition
    return definition


def unregister_cron(name: str) -> None:
    """For tests that register throwaway crons."""
    _crons.pop(name, None)


def get_cron(name: str) -> CronDefinition | None:
    return _crons.get(name)


def cron_by_route(route: str) -> CronDefinition | None:
    route = route.strip("/")
    return next((cron for cron in _crons.values() if cron.route == route), None)


def all_crons() -> list[CronDefinition]:
    return sorted(_crons.values(), key=lambda cron: cron.name)
