"""Settings, resolved once: defaults → config file → PROVISIOND_* environment → flags.

Every setting has a documented default in config/provisiond.yaml. The config file is
``$PROVISIOND_CONFIG`` when set, else ``<home>/provisiond.yaml`` when it exists.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from provisiond.errors import ConfigError
from provisiond.policies import MAX_DAYS

PACKAGE_DIR = Path(__file__).resolve().parent
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def bundled_dir(name: str) -> Path:
    """Where a bundled top-level folder (playbooks, roles, inventories, config) lives.

    Inside an installed wheel the folders are shipped as ``provisiond/_bundled/<name>``; in a
    source checkout they are the repository's top-level folders.
    """
    inside = PACKAGE_DIR / "_bundled" / name
    return inside if inside.is_dir() else PACKAGE_DIR.parent / name


def default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "provisiond"


@dataclasses.dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str = ""
    secret_key_file: Path | None = None
    artifacts_dir: Path | None = None
    backup_dir: Path | None = None
    playbooks_path: tuple[Path, ...] = ()
    roles_path: tuple[Path, ...] = ()
    tick_seconds: float = 120.0
    wake_check_seconds: float = 0.5
    lease_seconds: float = 90.0
    heartbeat_seconds: float = 15.0
    reaper_seconds: float = 30.0
    batch_size: int = 50
    # How many runs go at once is decided by the panels: each server takes at most its own
    # max_concurrency panel calls (a server setting, default 2), counted as the forks of its
    # runs, and at most per_server_runs runs. A run gets a fork per host up to that: forks
    # 0 means so; a number caps it further. max_runs is a safety cap across the fleet on
    # memory, not on cores (runs wait on panels, not on the CPU): 0 derives it from the
    # machine's memory (run_slots).
    forks: int = 0
    max_runs: int = 0
    per_server_runs: int = 2
    # One run (one ansible-playbook) may serve up to servers_per_run servers of one HTTP panel,
    # each held to its own share of the forks: starting a run costs ~1 CPU-s and ~33 MiB, a
    # server's calls in it almost nothing. 1: a run per server. SSH panels: a run per server.
    servers_per_run: int = 8
    timeout_create: float = 1800.0
    timeout_terminate: float = 3600.0
    timeout_default: float = 600.0
    retry_base: float = 30.0
    retry_factor: float = 2.0
    retry_cap: float = 1800.0
    retry_max_attempts: int = 6
    retry_terminate_attempts: int = 3
    ansible_verbosity: int = 0
    # How ansible-playbook waits while its forks wait on panels. provisiond_linear is Ansible's
    # linear strategy that sleeps until a fork exits instead of polling (every 0.1 ms for a free
    # fork, every internal_poll_interval for results; provisiond/ansible_plugins); linear is
    # Ansible's own. ansible_poll_interval is Ansible's internal_poll_interval: under
    # provisiond_linear only the longest sleep, as a fork's exit wakes the strategy at once
    # (Ansible's default 0.001 s woke a waiting run 1,000 times a second; 0.1 s did not slow
    # a 0 ms run, see bench/RESULTS.md). provisiond_linear also runs panel_call tasks in
    # threads of ansible-playbook instead of forks (a fork cost more than the call).
    ansible_strategy: str = "provisiond_linear"
    ansible_poll_interval: float = 0.1
    log_level: str = "INFO"
    log_format: str = "text"   # text, or json (one object a line) for log shippers
    artifacts_keep_days: float = 30.0
    # overdue sweep
    sweep_cron: str = "0 3 * * *"
    suspend_after_days: int = 10
    terminate_after_days: int = 45
    # daily sync of every enabled server (drift between the panels and provisiond)
    sync_cron: str = "30 3 * * *"
    # usage collection (issue 11): every server whose panel reports usage, once a day
    usage_cron: str = "30 4 * * *"
    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = 8740
    # PostgreSQL connections API requests hold at once, kept open between requests (db.connect)
    api_db_pool: int = 20
    # notifications
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "provisiond@localhost"
    alert_emails: tuple[str, ...] = ()
    alert_webhook_url: str = ""
    billing_webhook_url: str = ""
    billing_webhook_secret: str = ""
    billing_webhook_unsigned: bool = False
    welcome_template: str = ""
    notify_seconds: float = 10.0

    def __post_init__(self):
        home = Path(self.home)
        object.__setattr__(self, "home", home)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{home / 'provisiond.db'}")
        for name, default in (("secret_key_file", home / "secret.key"), ("artifacts_dir", home / "artifacts"),
                              ("backup_dir", home / "backups")):
            value = getattr(self, name)
            object.__setattr__(self, name, default if value is None else Path(value))
        object.__setattr__(self, "playbooks_path", tuple(Path(p) for p in self.playbooks_path))
        object.__setattr__(self, "roles_path", tuple(Path(p) for p in self.roles_path))
        if str(self.log_level).upper() not in LOG_LEVELS:
            raise ConfigError(f"setting log_level: {self.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"setting log_format: {self.log_format!r} is not one of {', '.join(LOG_FORMATS)}")
        self._check_overdue_days()
        if not 1 <= self.servers_per_run <= 256:
            raise ConfigError(f"setting servers_per_run: must be between 1 and 256, got {self.servers_per_run}")
        if not 1 <= self.api_db_pool <= 1000:
            raise ConfigError(f"setting api_db_pool: must be between 1 and 1000, got {self.api_db_pool}")
        for name in ("sweep_cron", "sync_cron", "usage_cron"):
            self._check_cron(name)
        if self.billing_webhook_url and not self.billing_webhook_secret and not self.billing_webhook_unsigned:
            # An unsigned hook lets anyone who can reach the billing system forge state changes.
            raise ConfigError("setting billing_webhook_secret: required when billing_webhook_url is set "
                              "(or set billing_webhook_unsigned: true to post unsigned on purpose)")

    def _check_cron(self, name: str) -> None:
        from apscheduler.triggers.cron import CronTrigger
        try:
            CronTrigger.from_crontab(getattr(self, name))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"setting {name}: {getattr(self, name)!r} is not a crontab line "
                              f"(minute hour day month weekday): {exc}") from None

    def _check_overdue_days(self) -> None:
        # Bounded here so a typo cannot reach the sweep (a date a million days back overflows).
        for name in ("suspend_after_days", "terminate_after_days"):
            if not 0 <= getattr(self, name) <= MAX_DAYS:
                raise ConfigError(f"setting {name}: must be between 0 and {MAX_DAYS} days, "
                                  f"got {getattr(self, name)}")
        if self.terminate_after_days < self.suspend_after_days:
            raise ConfigError(f"setting terminate_after_days: {self.terminate_after_days} comes before "
                              f"suspend_after_days {self.suspend_after_days}")

    @property
    def runs_dir(self) -> Path:
        """Where runs keep their private files (secrets included) while they last: 0700, in the home."""
        return self.home / "runs"

    def run_slots(self) -> int:
        """How many runs may go at once: ``max_runs``, or, when it is 0, as many as a quarter of
        the machine's memory holds at ``RUN_MEMORY_MIB`` each, between ``MIN_RUNS`` and
        ``MAX_RUNS_CAP`` (64 on a 24 GiB machine). Not tied to the cores: a run spends its time
        waiting on its panel, and ansible-playbook no longer spins while it does."""
        if self.max_runs > 0:
            return self.max_runs
        return max(MIN_RUNS, min(MAX_RUNS_CAP, memory_mib() // 4 // RUN_MEMORY_MIB))

    def timeout_for(self, action: str) -> float:
        return {"create": self.timeout_create, "terminate": self.timeout_terminate}.get(
            action, self.timeout_default)

    def role_dirs(self) -> list[Path]:
        """Folders searched for roles (a product's extra steps): the configured ones, then the bundled."""
        return [*self.roles_path, bundled_dir("roles")]

    def panel_dirs(self) -> list[Path]:
        """Folders searched for panels, first match wins: the configured ones, then the bundled."""
        return [*self.playbooks_path, bundled_dir("playbooks")]


# One run's memory (PSS), measured with bench/throughput.py at 2 s panel latency: an
# ansible-playbook process and its forks at max_concurrency 2, with the daemon's share: 84 MiB
# a run with 10 runs (838 MiB), 32 MiB with 50 (1,603 MiB; more sharing); 96 leaves room.
RUN_MEMORY_MIB = 96
MIN_RUNS = 4
MAX_RUNS_CAP = 256


def memory_mib() -> int:
    """The machine's memory in MiB (MemTotal), 4 GiB when it cannot be read."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 4096


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    """Turn a file or environment value into the field's type, naming the field when it fails."""
    kind = FIELDS[name].type
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if name in ("playbooks_path", "roles_path"):
            if isinstance(value, str):
                return tuple(p for p in value.split(os.pathsep) if p)
            return tuple(value)
        if kind.startswith("tuple"):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(value)
        return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: {value!r} is not a valid {kind}") from exc


def load(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve the settings for this process."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    home = Path((overrides or {}).get("home") or environ.get("PROVISIOND_HOME") or default_home())
    config_file = environ.get("PROVISIOND_CONFIG") or str(home / "provisiond.yaml")
    if os.path.exists(config_file):
        with open(config_file, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config_file}: expected a mapping of settings")
        for name, value in loaded.items():
            if name not in FIELDS:
                raise ConfigError(f"{config_file}: unknown setting {name!r}")
            values[name] = _coerce(name, value)
    for name in FIELDS:
        env_name = f"PROVISIOND_{name.upper()}"
        if env_name in environ and name != "home":
            values[name] = _coerce(name, environ[env_name])
    for name, value in (overrides or {}).items():
        if value is not None and name != "home":
            values[name] = _coerce(name, value)
    values["home"] = home
    return Settings(**values)
