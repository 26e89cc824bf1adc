"""The naive baseline: one ansible-runner run per job, in sequence (the seeds' cron model).

``python bench/naive/run_naive.py SPEC.json`` where SPEC has token and accounts (a list of
{panel_url, username, domain, email, package, password}). Prints one JSON line per job and a final
summary line. Run by bench/throughput.py inside a subprocess so RUSAGE_CHILDREN counts it all.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import ansible_runner

PLAYBOOK = Path(__file__).with_name("create_uri.yml")


def run_one(panel_url: str, token: str, account: dict) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="naive-run-"))
    try:
        (data_dir / "project").mkdir()
        shutil.copy(PLAYBOOK, data_dir / "project" / "main.yml")
        inventory = {"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                                       "ansible_python_interpreter": sys.executable}}}}
        started = time.time()
        runner = ansible_runner.run(
            private_data_dir=str(data_dir), playbook="main.yml", inventory=inventory, quiet=True,
            extravars={"panel_url": panel_url, "whm_user": "root", "whm_token": token,
                       "account": {k: v for k, v in account.items() if k not in ("password", "panel_url")},
                       "account_password": account["password"]},
            envvars={"ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "False"},
            settings={"pexpect_timeout": 0.5})
        return {"username": account["username"], "status": runner.status, "rc": runner.rc,
                "seconds": round(time.time() - started, 3)}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main(path: str) -> int:
    spec = json.loads(Path(path).read_text())
    started = time.time()
    ok = 0
    for account in spec["accounts"]:
        result = run_one(account["panel_url"], spec["token"], account)
        ok += result["status"] == "successful"
        print(json.dumps(result), flush=True)
    print(json.dumps({"summary": True, "jobs": len(spec["accounts"]), "ok": ok,
                      "seconds": round(time.time() - started, 3)}), flush=True)
    return 0 if ok == len(spec["accounts"]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
