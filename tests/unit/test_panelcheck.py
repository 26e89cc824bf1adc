"""``panels check`` against the variable contract: a typo is found before anything runs."""

from __future__ import annotations

import shutil

import pytest

from provisiond import contract, panelcheck, panels, render, varcheck
from provisiond.config import bundled_dir

BUNDLED = bundled_dir("playbooks")
CPANEL = panels.load_panel(BUNDLED / "cpanel")
ALLOWED = varcheck.allowed_for(["username", "scheme", "verify_tls"], ["api_token"])


def _typo_copy(tmp_path, good: str, bad: str) -> tuple[panels.Registry, str, int]:
    """A copy of the cpanel folder whose create.yml reads ``bad`` where it read ``good`` first."""
    folder = tmp_path / "cpanel"
    shutil.copytree(BUNDLED / "cpanel", folder)
    create = folder / "create.yml"
    text = create.read_text()
    line = text[:text.index(good)].count("\n") + 1
    create.write_text(text.replace(good, bad, 1))
    return panels.discover([tmp_path]), str(create), line


def test_a_misspelt_account_variable_fails_check_naming_file_line_and_the_right_name(tmp_path):
    registry, create, line = _typo_copy(tmp_path, "account.domain", "account.domian")
    [report] = panelcheck.check(registry, "cpanel")
    assert not report.ok
    assert report.problems == [
        f"{create}:{line}: account.domian is not a documented variable (did you mean account.domain?)"]


def _problems(playbook: str) -> list[str]:
    return varcheck.problems([("p.yml", playbook)], ALLOWED)


@pytest.mark.parametrize("read, says", [
    ("account_secrets[inventory_hostname].pasword",
     "account_secrets[inventory_hostname].pasword is not a documented variable "
     "(did you mean account_secrets[inventory_hostname].password?)"),
    ("panel_secrets.api_tokn", "panel_secrets.api_tokn is not a documented variable (did you mean "
                               "panel_secrets.api_token?)"),
    ("panel.api_token", "panel.api_token is not a documented variable"),  # a secret is not in panel
    ("account['usernme']", "account.usernme is not a documented variable (did you mean account.username?)"),
    ("panl_url", "panl_url is not a documented variable (did you mean panel_url?)"),
])
def test_undocumented_reads_are_refused(read, says):
    playbook = f"""
- hosts: all
  tasks:
    - name: one
      ansible.builtin.debug:
        msg: "{{{{ {read} }}}}"
"""
    [problem] = _problems(playbook)
    assert problem.startswith("p.yml:6: " + says)


def test_what_the_playbook_declares_and_ansibles_own_variables_pass():
    playbook = """
- hosts: all
  vars:
    headers: {Authorization: "{{ panel.username }}:{{ panel_secrets.api_token }}"}
  tasks:
    - name: look
      ansible.builtin.uri: {url: "{{ panel_url }}/x?{{ account.domain }}", headers: "{{ headers }}"}
      register: looked
    - name: keep
      ansible.builtin.set_fact: {seen: "{{ looked.json }}"}
    - name: use
      ansible.builtin.debug: {msg: "{{ seen }} {{ inventory_hostname }} {{ item }} {{ ansible_check_mode }}"}
      loop: "{{ account.extra_steps }}"
      when: looked.status == 200 and account_secrets[inventory_hostname].password
    - name: report
      ansible.builtin.set_stats: {data: {remote_id: "{{ account.username }}"}, per_host: true}
"""
    assert _problems(playbook) == []


def test_a_bare_condition_and_an_undocumented_report_are_checked():
    playbook = """
- hosts: all
  tasks:
    - name: report
      ansible.builtin.set_stats: {data: {remote_idd: "x"}, per_host: true}
      when: acount.domain
"""
    assert _problems(playbook) == [
        "p.yml:6: acount is not a documented variable (did you mean account?)",
        "p.yml:5: set_stats remote_idd is not a documented report (did you mean set_stats remote_id?)"]


def test_panel_calls_refuse_conditions_and_report_are_checked_like_a_fail_and_a_set_stats():
    playbook = """
- hosts: all
  tasks:
    - name: read
      panel_call:
        url: "{{ panel_url }}/x"
        refuse:
          - name: refuse
            when: read.answer.domain != acount.domain
            msg: "{{ read.answer.domain }} is not {{ account.domian }}"
        report: {remote_idd: "{{ read.answer.id }}", username: "{{ account.username }}"}
      register: read
"""
    assert _problems(playbook) == [
        "p.yml:9: acount is not a documented variable (did you mean account?)",
        "p.yml:10: account.domian is not a documented variable (did you mean account.domain?)",
        "p.yml:11: panel_call report remote_idd is not a documented report "
        "(did you mean panel_call report remote_id?)"]


def test_a_role_of_the_panel_folder_is_checked(tmp_path):
    folder = tmp_path / "cpanel"
    shutil.copytree(BUNDLED / "cpanel", folder)
    (folder / "roles" / "extra" / "tasks").mkdir(parents=True)
    (folder / "roles" / "extra" / "tasks" / "main.yml").write_text(
        "- name: x\n  ansible.builtin.debug: {msg: '{{ account.emial }}'}\n")
    problems = panelcheck._variables(panels.load_panel(folder), "suspend",
                                     render.render_playbook(CPANEL, "suspend"))
    assert problems == [f"{folder}/roles/extra/tasks/main.yml:2: account.emial is not a documented "
                        "variable (did you mean account.email?)"]


def test_every_bundled_panel_reads_only_documented_variables():
    registry = panels.discover([BUNDLED])
    assert len(registry.panels) == 8 and not registry.problems
    for panel in registry.panels.values():
        for action in panel.actions:
            assert panelcheck._variables(panel, action, render.render_playbook(panel, action)) == []


def test_the_contract_document_is_generated_from_the_code():
    assert (BUNDLED / "CONTRACT.md").read_text() == contract.markdown(), \
        "run: python -m provisiond.contract > playbooks/CONTRACT.md"


def test_panel_variables_are_what_render_passes():
    credentials = {"username": "root", "api_token": "t", "scheme": "https", "verify_tls": True}
    passed = render.server_vars(CPANEL, "h.example", None, credentials)
    assert set(passed) == set(contract.PANEL) | {"username", "scheme", "verify_tls"}


def test_what_the_worker_passes_is_all_in_the_contract(cpanel_setup, registry, vault, worker):
    from provisiond import lifecycle
    from provisiond.catalog import open_credentials
    from provisiond.worker import connection_vars
    server, _ = cpanel_setup
    service, create = lifecycle.order(registry, vault, product="starter", domain="seam.example.com",
                                      email="a@seam.example.com")
    accounts = [worker._account(create)]
    credentials = open_credentials(server.credentials, vault, server.name)
    spec = render.build(CPANEL, "create", connection_vars(CPANEL, server, credentials), credentials, accounts,
                        timeout=60, forks=1)
    run_vars = {k for k in spec.inventory["all"]["vars"] if not contract.is_magic(k)}
    host_vars = {k for host in spec.inventory["all"]["hosts"].values() for k in host}
    assert run_vars | host_vars | set(spec.secrets) <= set(contract.RUN)
    assert set(accounts[0].vars) <= set(contract.ACCOUNT)
    assert "domain" in accounts[0].vars and "password" in accounts[0].secrets
    assert set(accounts[0].secrets) <= set(contract.ACCOUNT_SECRETS)
