"""The run's ansible-playbook (provisiond.ansible_plugins.playbook) starts without importing
paramiko, and a playbook that uses paramiko still gets the real module."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    from provisiond.ansible_plugins.playbook import defer_import
    defer_import("paramiko")
    import ansible.cli.playbook  # noqa: F401 - what the command imports before it parses its arguments
    print(sorted(name for name in ("paramiko.client", "paramiko.transport", "invoke") if name in sys.modules))
    from ansible.plugins.connection import paramiko_ssh
    import paramiko.transport
    print(paramiko_ssh.paramiko.SSHClient.__module__, paramiko_ssh.paramiko.ssh_exception.BadHostKeyException.__name__,
          paramiko.transport.Transport.__name__, type(sys.modules["paramiko"]).__name__)
""")


def test_paramiko_waits_until_used_and_is_the_real_one_then():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "paramiko.client BadHostKeyException Transport module"]


def test_the_command_is_ansible_playbook():
    done = subprocess.run([sys.executable, "-P", "-m", "provisiond.ansible_plugins.playbook", "--version"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ansible-playbook [core ")
