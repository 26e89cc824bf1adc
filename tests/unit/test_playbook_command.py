"""The run's ansible-playbook (provisiond.ansible_plugins.playbook) starts without importing
paramiko, also once Ansible has loaded every connection plugin before the first play and
warned of a deprecation (which looks through every module's file), and a
playbook that uses paramiko still gets the real module and the paramiko plugin's host key policy."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    import types
    from provisiond.ansible_plugins.playbook import defer_paramiko
    defer_paramiko()
    import ansible.cli.playbook  # noqa: F401 - what the command imports before it parses its arguments
    from ansible.plugins.loader import connection_loader
    list(connection_loader.all(class_only=True))  # PlaybookExecutor.run, before the first play
    from ansible.utils.display import Display
    Display().deprecated(msg="as for a strategy plugin outside ansible.builtin, at each play")
    print(sorted(name for name in ("paramiko.client", "paramiko.transport", "invoke") if name in sys.modules))
    from ansible.plugins.connection import paramiko_ssh
    import paramiko.client
    import paramiko.transport
    client = paramiko.client.SSHClient()
    client.set_missing_host_key_policy(paramiko_ssh.MyAddPolicy(types.SimpleNamespace(_options={})))
    print(client._policy.missing_host_key.__qualname__)
    print(paramiko_ssh.paramiko.SSHClient.__module__, paramiko_ssh.paramiko.ssh_exception.BadHostKeyException.__name__,
          paramiko.transport.Transport.__name__, type(sys.modules["paramiko"]).__name__)
""")


def test_paramiko_waits_until_used_and_is_the_real_one_then():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "MyAddPolicy.missing_host_key",
                                        "paramiko.client BadHostKeyException Transport module"]


def test_the_command_is_ansible_playbook():
    done = subprocess.run([sys.executable, "-P", "-m", "provisiond.ansible_plugins.playbook", "--version"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ansible-playbook [core ")
