"""The variable contract between provisiond and a panel's playbooks, in one place.

``worker._account`` (lifecycle jobs), ``actions.run_action`` (admin actions) and
``worker.test_server`` build ``account``; ``render.server_vars`` builds ``panel``;
``render.build`` adds the run variables and the secrets vars file. ``panels check`` reads these
tables to refuse a playbook that uses anything else, and ``playbooks/CONTRACT.md`` is generated
from them (``python -m provisiond.contract > playbooks/CONTRACT.md``; a test keeps it current).
"""

from __future__ import annotations

import sys

# account.*: one job's account, an inventory host var of its host.
ACCOUNT = {
    "job_id": "the job's id (lifecycle jobs)",
    "action": "the action being run",
    "params": ("the job's or action's non-secret parameters (a mapping; renew: `until`, the new "
               "paid-until date, YYYY-MM-DD)"),
    "attempt": "which attempt this is, from 1 (lifecycle jobs)",
    "previous_error": "the previous attempt's message, or null (lifecycle jobs)",
    "service_id": "the service's id",
    "ref": "the service's billing reference",
    "domain": "the service's domain",
    "email": "the customer's email (lifecycle jobs)",
    "name": "the customer's name as the order gave it, or null (lifecycle jobs)",
    "username": "the account's username on the panel",
    "remote_id": "what create reported as remote_id, or null before the create",
    "package": "the package (for change_package: the new one)",
    "package_config": "the product's per-panel settings (the manifest's `package:` fields)",
    "reason": "why (suspend: the reason given), or null",
    "extra_steps": "create only: the product's extra roles, run after the create",
    "backup_before_terminate": "terminate: whether the product asks for a final backup",
    "fields": ("the checkout fields the order gave, by name, defaults filled in; {} when none "
               "(lifecycle jobs; a step role reads it with a `default({})` filter)"),
    "server": "test_connection only: the server's name",
}

# The lifecycle actions a panel's ``actions:`` may list, each run by ``<action>.yml``.
ACTIONS = {
    "create": "make the account",
    "suspend": "suspend the account",
    "unsuspend": "lift a suspension",
    "terminate": "remove the account",
    "change_package": "the account's package (`account.package` is the new one)",
    "change_password": "the account's password (`account_secrets[inventory_hostname].password`)",
    "test_connection": "`server test` and `server add --test`: can provisiond talk to the panel",
    "renew": ("optional: run after `service renew` recorded a new paid-until (`account.params.until`), "
              "e.g. to lift a panel-side expiry, leaving a suspension to unsuspend; a panel without it gets "
              "no run and no job"),
}

# panel.*: the server the run talks to; every non-secret credential of the manifest joins these.
PANEL = {
    "id": "the panel id (the folder's manifest id)",
    "host": "the server's host",
    "port": "the server's port (the manifest's default_port unless given)",
    "url": "scheme://host:port",
    "host_key": "the pinned SSH host key (SSH panels), or null",
}
PANEL_CREDENTIALS = "every credential of the manifest not marked `secret: true`, by its field name"

# Top-level run variables (inventory group and host vars, and the secrets vars file).
RUN = {
    "account": "the account (below)",
    "panel": "the host's server (below); one run may serve several servers of an HTTP panel",
    "panel_url": "the same as panel.url",
    "panel_secrets": ("the manifest's `secret: true` credentials of the host's server, by field name "
                      "(kept out of logs)"),
    "server_secrets": "what `panel_secrets` reads: each server's, by `provisiond_server` (kept out of logs)",
    "provisiond_server": "which of the run's servers the host's account is on (s0, s1, ...)",
    "provisiond_server_calls": "how many of the run's forks that server may use at once (its `max_concurrency` share)",
    "account_secrets": "per host: read as account_secrets[inventory_hostname].<name> (kept out of logs)",
    "provisiond_action": "the action being run",
    "provisiond_backup_dir": "where a final backup may be written (terminate), or null",
    "redact_values": "every secret of the run, for the panel_call module's redaction",
}

# account_secrets[inventory_hostname].*
ACCOUNT_SECRETS = {
    "password": "the account's password (create; change_password: the new one)",
}

# What a playbook may report with ansible.builtin.set_stats (per_host: true). provisiond acts on
# remote_id (lifecycle.apply_success) and outcome (worker._end_job); the rest is shown as reported
# (server test, admin actions). A failure's message is the failing task's msg, not a report.
STATS = {
    "remote_id": "create: the panel's id of the account, stored on the service (default: username)",
    "username": "create: the username the panel made",
    "outcome": "`needs_attention`: the failure is held for an operator, never retried",
    "version": "test_connection: the panel's version, shown to the operator",
    "users": "test_connection: how many accounts the panel has, shown to the operator",
    "packages": "list_packages: the panel's package names",
    "accounts": ("list_accounts: every account on the server, each exactly {username, domain, "
                 "package, suspended (bool), email (string or null)}"),
    "package": "change_package: the package now in force",
    "quota": "change_package: the quota now in force",
    "login": "login_link: the one-time login link",
    "url": "login_link: the one-time login link",
    "expires": "login_link: when the link expires",
    "vhost_templates": "test_connection (CloudPanel): the vhost templates the server offers",
    "usage": ("usage: one entry per account: username, disk_used_mb, disk_limit_mb, bandwidth_used_mb, "
              "bandwidth_limit_mb, inodes_used, inodes_limit, mailboxes, databases (MB; null: unlimited "
              "or not reported)"),
}

# Ansible's own variables a playbook may read without declaring them.
MAGIC = frozenset({
    "inventory_hostname", "inventory_hostname_short", "item", "hostvars", "groups", "group_names",
    "playbook_dir", "role_path", "role_name", "omit", "ansible_failed_result", "ansible_failed_task",
    "ansible_loop", "ansible_index_var", "ansible_play_hosts", "play_hosts", "ansible_facts",
    # Jinja2 and Ansible globals (functions, not variables)
    "lookup", "query", "q", "range", "dict", "lipsum", "cycler", "joiner", "namespace", "now", "undef",
    "true", "false", "none", "True", "False", "None",
})


def is_magic(name: str) -> bool:
    """An Ansible magic variable or global every playbook may use."""
    return name in MAGIC or name.startswith("ansible_")


def _table(rows: dict[str, str]) -> str:
    return "\n".join(["| name | meaning |", "|---|---|", *(f"| `{k}` | {v} |" for k, v in rows.items())])


def markdown() -> str:
    """The contract as playbooks/CONTRACT.md says it."""
    return "\n".join([
        "# The playbook variable contract",
        "",
        "<!-- Generated by `python -m provisiond.contract > playbooks/CONTRACT.md` from",
        "     provisiond/contract.py; tests/unit/test_panelcheck.py fails when it is stale. -->",
        "",
        "What provisiond passes to a panel's playbooks, and what it reads back. Playbook text is",
        "rendered with `[[ ]]` / `[% %]` (only `panel_id` and `action` are given); everything below",
        "is an Ansible variable. `provisiond panels check` refuses a playbook that reads a variable",
        "not listed here and not declared by the playbook itself (`vars:`, `register:`,",
        "`set_fact:`, `loop_var`), with the file, line and the nearest documented name.",
        "",
        "## Lifecycle actions", "",
        "What a panel's `actions:` may list. A request for an action the panel leaves out is refused",
        "(`panel X does not support suspend`), except `renew`, which is optional: the new paid-until is",
        "recorded without a run. `panels check` reports a `renew.yml` that `actions:` leaves out (it",
        "would never run).", "", _table(ACTIONS), "",
        "## Run variables", "", _table(RUN), "",
        "## `account.*`", "", _table(ACCOUNT), "",
        "## `panel.*`", "", _table(PANEL), "", f"and {PANEL_CREDENTIALS}.", "",
        "## `panel_secrets.*`", "", "The manifest's credentials marked `secret: true`, by field name.", "",
        "## `account_secrets[inventory_hostname].*`", "", _table(ACCOUNT_SECRETS), "",
        "## What `set_stats` may report", "",
        "Report with `ansible.builtin.set_stats: {data: {...}, per_host: true}`. provisiond acts on",
        "`remote_id` and `outcome`; the rest is shown to the operator as reported. A failure's message",
        "is the failing task's `msg` (or the panel's answer), never a report.", "",
        "A `panel_call` may report the same names itself (`report: {...}`, when the call succeeds and",
        "no `refuse` check holds), and a `refuse` check may report `outcome: needs_attention`; each is",
        "a forked task fewer per account than a `set_stats` (or `fail`) task after it (under the default",
        "strategy a `panel_call` runs in a thread of ansible-playbook; other tasks fork a worker per host).", "",
        _table(STATS), "",
        "## Ansible's own variables", "",
        "Any `ansible_*` variable, and: " + ", ".join(f"`{n}`" for n in sorted(MAGIC)
                                                     if n[0].islower() and n not in ("true", "false", "none"))
        + ".", "",
    ])


if __name__ == "__main__":  # pragma: no cover - the generator of playbooks/CONTRACT.md
    sys.stdout.write(markdown())
