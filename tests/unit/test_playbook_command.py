"""The run's ansible-playbook (provisiond.ansible_plugins.playbook) starts without importing
paramiko, also once Ansible has loaded every connection plugin before the first play and
warned of a deprecation (which looks through every module's file), and a
playbook that uses paramiko still gets the real module and the paramiko plugin's host key policy.
Ansible's routing metadata is parsed once and kept, as JSON, for the next runs."""

import json
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


METADATA = textwrap.dedent("""
    import json, pathlib, sys
    import ansible
    from ansible.utils.collection_loader import _collection_finder
    from provisiond.ansible_plugins.playbook import cache_routing_metadata
    folder = pathlib.Path(sys.argv[1])
    text = (pathlib.Path(ansible.__file__).parent / "config" / "ansible_builtin_runtime.yml").read_text()
    parse, parsed = _collection_finder._meta_yml_to_dict, []
    _collection_finder._meta_yml_to_dict = lambda data, content_id: parsed.append(1) or parse(data, content_id)
    cache_routing_metadata(folder)
    read = _collection_finder._meta_yml_to_dict
    results = [read(text, ("ansible.builtin", "runtime.yml")) for _ in range(2)]
    (folder / next(p.name for p in folder.iterdir())).write_text("{cut sh")   # a torn file is parsed again
    results.append(read(text, ("ansible.builtin", "runtime.yml")))
    print(json.dumps([len(parsed), all(r == parse(text, None) for r in results),
                      sorted(p.name[:17] for p in folder.iterdir())]))
""")


def test_ansibles_routing_metadata_is_parsed_once_and_read_back_the_same(tmp_path):
    """Every run's ansible-playbook reads Ansible's 370 KB routing YAML; the parsed copy kept in
    the home's cache/ serves the next runs, equal to a fresh parse."""
    folder = tmp_path / "cache"
    done = subprocess.run([sys.executable, "-c", METADATA, str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [2, True, ["ansible-metadata-"]]
