"""From a batch of jobs (one action, on one server or on several of one HTTP panel) to a RunSpec:
playbook, inventory, secrets.

The playbook template is rendered by Jinja2 with provisiond's own delimiters (``[[ ]]``,
``[% %]``) so Ansible's ``{{ }}`` pass through untouched, with StrictUndefined and only
trusted values (panel id, action, role names). Service data never enters playbook text: it
travels as inventory host vars (``account``) and, when secret, in the secrets vars file
(``account_secrets[inventory_hostname]``, ``panel_secrets``).

A run may serve several servers of one panel (``ServerPart``): each host then carries its own
server (``panel``, ``panel_url``, and ``panel_secrets``, which reads the server's entry of the
secrets file), and ``provisiond_server`` / ``provisiond_server_calls``, by which the
``provisiond_linear`` strategy holds each server to its own share of the run's forks. Hosts are
listed one server after the other in turn, so a full server does not keep the next ones waiting.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
from pathlib import Path
from typing import Any

import jinja2

from provisiond.config import bundled_dir
from provisiond.crypto import Redactor
from provisiond.execute import STEPS_PLAY_NAME, RunSpec, as_data
from provisiond.panels import Panel
from provisiond.ssh import known_hosts_line

_ENV = jinja2.Environment(
    block_start_string="[%", block_end_string="%]",
    variable_start_string="[[", variable_end_string="]]",
    comment_start_string="[#", comment_end_string="#]",
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


@dataclasses.dataclass
class Account:
    """What one job tells the playbook about its account."""
    host: str
    vars: dict[str, Any]
    secrets: dict[str, Any]   # strings, and ``steps``: {role: {name: value}}


@dataclasses.dataclass
class ServerPart:
    """One server's share of a run: its connection facts, credentials, accounts, and how many
    calls it may take at once (its share of the run's forks)."""
    server: dict[str, Any]
    credentials: dict[str, Any]
    accounts: list[Account]
    calls: int = 1


def host_name(job_id: int) -> str:
    return f"job_{job_id}"


# A product's extra steps (SSL, a mailbox, DNS records, ...) run after a successful create, each a
# role named by the product; a host whose create failed takes no part (Ansible drops it).
STEPS_PLAY = """
- name: """ + STEPS_PLAY_NAME + """
  hosts: all
  gather_facts: false
  tasks:
    - name: Extra step
      ansible.builtin.include_role:
        name: "{{ step }}"
      loop: "{{ account.extra_steps | default([]) }}"
      loop_control:
        loop_var: step
"""


def render_playbook(panel: Panel, action: str, steps: bool = True) -> str:
    """The action's playbook; a create gets the extra-steps play unless ``steps`` is False."""
    template = _ENV.from_string(panel.playbook_path(action).read_text(encoding="utf-8"))
    text = template.render(panel_id=panel.id, action=action)
    if action == "create" and steps:
        text = text.rstrip() + "\n" + STEPS_PLAY
    return text


def server_vars(panel: Panel, host: str, port: int | None, credentials: dict,
                host_key: str | None = None) -> dict:
    """Non-secret connection facts every host of the run shares."""
    public = {k: v for k, v in credentials.items() if k not in panel.secret_fields}
    port = port or panel.default_port
    scheme = public.get("scheme", "https")
    return {"id": panel.id, "host": host, "port": port, "url": f"{scheme}://{host}:{port}",
            "host_key": host_key, **public}


def build(panel: Panel, action: str, server: dict, credentials: dict, accounts: list[Account],
          *, forks: int, **options) -> RunSpec:
    """A run on one server."""
    return build_parts(panel, action, [ServerPart(server, credentials, accounts, forks)], **options)


def build_parts(panel: Panel, action: str, parts: list[ServerPart], *, timeout: float, verbosity: int = 0,
                ident: str = "run", cancelled=lambda: False, role_dirs: tuple = (),
                backup_dir: str | None = None, runs_dir=None) -> RunSpec:
    """A run over one or more servers of ``panel`` (SSH panels: one, since the connection is the run's)."""
    if panel.connection == "ssh" and len(parts) != 1:
        raise ValueError("an SSH panel's run serves one server")
    server_secrets = {f"s{i}": {k: part.credentials[k] for k in panel.secret_fields if k in part.credentials}
                      for i, part in enumerate(parts)}
    accounts = [a for part in parts for a in part.accounts]
    account_secrets = {a.host: a.secrets for a in accounts}
    every_secret = [v for v in (*(v for s in server_secrets.values() for v in s.values()),
                                *(v for a in accounts for v in _leaves(a.secrets)))
                    if v not in (None, "")]
    for i, part in enumerate(parts):
        every_secret += _basic_auth_forms(part.credentials, server_secrets[f"s{i}"].values())
    redactor = Redactor(str(v) for v in every_secret)
    # Service data and credentials are data, never templates (execute.Data: written unsafe).
    run_vars = {"ansible_connection": "local", "provisiond_action": action, "provisiond_backup_dir": backup_dir}
    private_files = {}
    if panel.connection == "ssh":
        server, credentials = parts[0].server, parts[0].credentials
        run_vars.update(_ssh_vars(server, credentials))
        private_files = {"ssh_key": credentials["private_key"].strip() + "\n",
                         "known_hosts": known_hosts_line(server["host"], server["port"], server["host_key"])}
    hosts = {}
    for accounts_in_turn in itertools.zip_longest(*(part.accounts for part in parts)):
        for i, account in enumerate(accounts_in_turn):
            if account is not None:
                part = parts[i]
                hosts[account.host] = {
                    "account": as_data(account.vars), "panel": as_data(part.server),
                    "panel_url": as_data(part.server["url"]), "provisiond_server": f"s{i}",
                    "provisiond_server_calls": max(1, part.calls),
                    "panel_secrets": "{{ server_secrets[provisiond_server] }}"}
    inventory = {"all": {"vars": run_vars, "hosts": hosts}}
    secrets = {"server_secrets": server_secrets, "account_secrets": account_secrets,
               "redact_values": [str(v) for v in every_secret]}
    # The steps play costs a task per host even when it has nothing to do: left out unless needed.
    steps = any(a.vars.get("extra_steps") for a in accounts)
    return RunSpec(playbook=render_playbook(panel, action, steps), inventory=inventory,
                   secrets=secrets, redactor=redactor, timeout=timeout, ident=ident,
                   forks=sum(max(1, part.calls) for part in parts), verbosity=verbosity, cancelled=cancelled,
                   private_files=private_files, runs_dir=runs_dir,
                   env={"ANSIBLE_ROLES_PATH": ":".join(map(str, roles_path(panel, role_dirs)))})


def roles_path(panel: Panel, role_dirs=()) -> list[Path]:
    """Where a run finds roles: the panel folder's own ``roles/`` (what its playbooks share),
    then the configured folders (or the bundled ones)."""
    return [panel.path / "roles", *(role_dirs or [bundled_dir("roles")])]


def _leaves(secrets: dict):
    """Every value of a job's secrets, those nested under ``steps`` included."""
    for value in secrets.values():
        if isinstance(value, dict):
            yield from _leaves(value)
        else:
            yield value


def _basic_auth_forms(credentials: dict, secrets) -> list[str]:
    """``base64(user:secret)``, as an Authorization: Basic header carries a panel's password."""
    users = [str(v) for k, v in credentials.items() if k in ("username", "user", "admin_user") and v]
    return [base64.b64encode(f"{user}:{secret}".encode()).decode()
            for user in users for secret in secrets if secret]


def _ssh_vars(server: dict, credentials: dict) -> dict:
    """Connection variables of an SSH panel: the pinned host key only, the stored key only."""
    private = "{{ playbook_dir }}/../private"
    return {
        "ansible_connection": "ssh",
        "ansible_host": as_data(server["host"]),
        "ansible_port": server["port"],
        "ansible_user": as_data(credentials.get("ssh_user", "root")),
        "ansible_ssh_private_key_file": f"{private}/ssh_key",
        "ansible_ssh_common_args": (f"-o UserKnownHostsFile={private}/known_hosts -o StrictHostKeyChecking=yes "
                                    "-o IdentitiesOnly=yes -o PasswordAuthentication=no -o BatchMode=yes"),
        "ansible_python_interpreter": as_data(credentials.get("python_interpreter") or "auto_silent"),
    }
