"""An attempt's own events, task tree and stdout (provisiond.runs), from a real batch run."""

from __future__ import annotations

import json

from provisiond import db as dbmod
from provisiond import lifecycle, runs
from provisiond.models import Job, ProvisioningLog, RunEvent, utcnow
from tests.conftest import WHM_TOKEN
from tests.helpers import last_log


def test_migration_15_adds_run_events_to_a_database_of_version_14(database):
    database.drop_tables([RunEvent])
    dbmod.Setting.update(value="14").where(dbmod.Setting.key == "schema_version").execute()
    assert not database.table_exists(RunEvent._meta.table_name)
    steps = ["15: each attempt's own task events, for the console's task tree and stdout",
             "16: indexes the console's pages read by"]
    assert dbmod.pending_migrations(database)[:2] == steps   # then the later ones
    assert dbmod.upgrade(database)[:2] == steps
    assert database.table_exists(RunEvent._meta.table_name)
    assert dbmod.upgrade(database) == []


def test_migration_16_indexes_what_the_console_reads_by(database):
    names = {"job": {"job_status_updated", "job_status_server"}, "provisioning_log": {"provisioning_log_started"},
             "service": {"service_status_server"}}
    for table, indexes in names.items():
        assert indexes <= {i.name for i in database.get_indexes(table)}, table
        for index in indexes:
            database.execute_sql(f"DROP INDEX {index}")
    dbmod.Setting.update(value="15").where(dbmod.Setting.key == "schema_version").execute()
    assert dbmod.upgrade(database)[0] == "16: indexes the console's pages read by"
    for table, indexes in names.items():
        assert indexes <= {i.name for i in database.get_indexes(table)}, table


def test_each_job_of_a_batch_sees_only_its_own_events_and_output(cpanel_setup, registry, vault, whm, worker):
    whm.op_createacct({"username": "squat", "domain": "r1.example.com", "plan": "basic",
                       "password": "Zz3!squatter-long", "contactemail": "s@r1.example.com"})
    jobs = [lifecycle.order(registry, vault, product="starter", domain=f"r{i}.example.com",
                            email=f"o@r{i}.example.com")[1] for i in range(2)]
    assert len(worker.tick(wait=True)) == 1  # one run for both creates; r1 fails in it
    good, bad = (last_log(Job.get_by_id(j.id)) for j in jobs)
    assert (good.status, bad.status) == ("succeeded", "failed")

    for log, mine, other in ((good, jobs[0], jobs[1]), (bad, jobs[1], jobs[0])):
        events = runs.events_of(log.id)
        assert events and [e.seq for e in events] == list(range(len(events)))
        shown = json.dumps([[e.event, e.play, e.task, e.stdout, e.detail] for e in events])
        text = runs.stdout_of(log.id, "ansi")
        for seen in (shown, text):
            assert f"job_{mine.id}" in seen and f"job_{other.id}" not in seen
            assert f"r{1 - jobs.index(mine)}.example.com" not in seen
            assert WHM_TOKEN not in seen and "squatter" not in seen
        assert "\x1b[0;32m" in text                       # Ansible's colours are kept ...
        plain = runs.stdout_of(log.id, "txt")
        assert "\x1b" not in plain and f"ok: [job_{mine.id}" in plain   # ... or left out
        assert "TASK [" in plain and plain == runs.stdout_of(log.id, "txt")
        html = runs.stdout_of(log.id, "html")
        assert '<span class="ansi-32">' in html and "\x1b" not in html
        tree = runs.task_tree(log.id)
        tasks = [t for play in tree for t in play["tasks"]]
        assert tasks and all(t["status"] in ("ok", "changed", "skipped", "failed", "ignored") for t in tasks)
        assert all(t["started_at"] <= utcnow() and t["duration"] >= 0 for t in tasks)

    failed = runs.events_of(bad.id, status="failed")
    assert failed[0].task == bad.failed_task          # the cause first, then what the rescue did
    assert failed[0].detail["msg"] and "r1.example.com" in json.dumps(failed[0].detail)
    print(runs.stdout_of(bad.id, "ansi"))
    assert runs.events_of(good.id, status="failed") == []
    assert [e.seq for e in runs.events_of(bad.id, task=bad.failed_task)] == [failed[0].seq]
    assert not any(t["status"] == "failed" for play in runs.task_tree(good.id) for t in play["tasks"])
    assert [a.id for a in runs.attempts_of(jobs[1].id)] == [bad.id]
    # The whole run's stdout.txt stays plain text, as every reader of it expects.
    assert "\x1b" not in open(f"{good.artifacts_path}/stdout.txt").read()
    assert "\x1b" not in (good.stdout_excerpt or "") + (bad.stdout_excerpt or "")


def test_an_attempt_recorded_before_run_events_is_read_from_its_kept_artifact(cpanel_setup, registry, vault,
                                                                             tmp_path):
    _, job = lifecycle.order(registry, vault, product="starter", domain="old.example.com",
                             email="o@old.example.com")
    kept = tmp_path / "kept"
    kept.mkdir()
    event = {"event": "runner_on_failed", "counter": 7, "stdout": "\x1b[0;31mfatal: [job_%d]: FAILED!\x1b[0m" % job.id,
             "event_data": {"play": "Create", "task": "Create the account", "host": f"job_{job.id}",
                            "start": "2026-11-28T10:00:00.5+00:00", "duration": 1.25,
                            "res": {"msg": "refused", "answer": {"reason": "<script>x</script>"}}}}
    (kept / f"job_{job.id}.json").write_text(json.dumps({"outcome": {}, "events": [event]}))
    now = utcnow()
    log = ProvisioningLog.create(job=job, attempt=1, action="create", status="failed", started_at=now,
                                 finished_at=now, duration=1.0, artifacts_path=str(kept),
                                 stdout_excerpt="fatal: [job] excerpt")
    [found] = runs.events_of(log.id)
    assert (found.status, found.task, found.duration, found.detail["msg"]) == ("failed", "Create the account",
                                                                               1.25, "refused")
    assert found.started_at.isoformat() == "2026-11-28T10:00:00.500000"
    assert runs.task_tree(log.id)[0]["tasks"][0]["status"] == "failed"
    assert "TASK [Create the account]" in runs.stdout_of(log.id)
    (kept / f"job_{job.id}.json").unlink()                 # pruned: the excerpt is what is left
    assert runs.events_of(log.id) == [] and runs.stdout_of(log.id) == "fatal: [job] excerpt"
