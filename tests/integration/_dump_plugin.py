# conftest-style hook: print the stdout of every run of a test, for eyeballing
import pytest
@pytest.fixture(autouse=True)
def _dump(request):
    yield
    from provisiond.models import ProvisioningLog
    try:
        for row in ProvisioningLog.select():
            print("=====", row.action, row.status, row.failed_task, row.message)
            from pathlib import Path
            if row.artifacts_path:
                print((Path(row.artifacts_path) / "stdout.txt").read_text())
    except Exception as exc:
        print("dump failed", exc)
