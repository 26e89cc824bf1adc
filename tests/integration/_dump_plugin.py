import pytest
@pytest.fixture(autouse=True)
def _warn(request):
    yield
    from pathlib import Path
    from provisiond.models import ProvisioningLog
    try:
        for row in ProvisioningLog.select():
            text = (Path(row.artifacts_path) / "stdout.txt").read_text() if row.artifacts_path else ""
            for line in text.splitlines():
                if "WARNING" in line or "DEPRECAT" in line:
                    print("WARN", request.node.name, row.action, line)
    except Exception as exc:
        print("dump failed", exc)
