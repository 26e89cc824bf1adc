"""A job's stdout excerpt is its own host's lines, whatever the verbosity (pure text, no run)."""

from __future__ import annotations

from provisiond.artifacts import stdout_excerpt

VERBOSE = """
TASK [Create the account (createacct)] *****
ok: [job_1] => {
    "answer": {"domain": "one.example.com"}
}
fatal: [job_2 -> localhost]: FAILED! => {
    "msg": "Sorry, two.example.com: [taken]"
}
[WARNING]: something about the whole run

PLAY RECAP *****
job_1                      : ok=1    changed=0    unreachable=0    failed=0
job_2                      : ok=0    changed=0    unreachable=0    failed=1
"""


def test_continuation_lines_stay_with_their_host_and_never_reach_another():
    one, two = stdout_excerpt(VERBOSE, "job_1"), stdout_excerpt(VERBOSE, "job_2")
    assert "one.example.com" in one and "two.example.com" not in one and "job_2" not in one
    assert "two.example.com" in two and "one.example.com" not in two and "job_1" not in two
    assert "WARNING" not in one + two


def test_a_host_the_output_never_names_gets_the_runs_own_lines_only():
    assert stdout_excerpt("ERROR! the playbook could not be parsed\n", "job_9") == (
        "ERROR! the playbook could not be parsed")
    assert stdout_excerpt(VERBOSE, "job_9") == "[WARNING]: something about the whole run"
