"""A run compiles each template source and each condition once
(provisiond.ansible_plugins.compiled_templates), and what is kept never stands in for a template
the compiler would read otherwise: another environment renders with its own variables,
``#jinja2:`` settings and Ansible's backslash escaping give their own code, and a syntax error
stays an error. In a fresh interpreter, since the cache is installed on Ansible's environment
class for the whole process.
"""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(r"""
    import json
    from ansible.plugins.loader import init_plugin_loader
    init_plugin_loader()
    from ansible._internal._templating._jinja_bits import AnsibleEnvironment
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template
    from provisiond.ansible_plugins.compiled_templates import cache_compiled_templates

    cache_compiled_templates()
    parsed = []
    parse = AnsibleEnvironment._parse

    def counting(self, source, *args, **kwargs):
        parsed.append(str(source))
        return parse(self, source, *args, **kwargs)

    AnsibleEnvironment._parse = counting
    generated = []
    generate = AnsibleEnvironment._generate

    def counting_generate(self, source, *args, **kwargs):
        generated.append(1)
        return generate(self, source, *args, **kwargs)

    AnsibleEnvironment._generate = counting_generate

    def render(text, variables, **kwargs):
        return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(text), **kwargs)

    out = {}
    body = "{{ panel_url }}/json-api/{{ call | default('accountsummary') }}"
    out["hosts"] = [render(body, {"panel_url": f"http://s{n}", **({"call": "createacct"} if n else {})})
                    for n in range(3)]
    out["parsed_once"] = parsed.count(body)
    header = "#jinja2: variable_start_string:'[[', variable_end_string:']]'\n"
    out["settings"] = [render(header + "[[ x ]] {{ x }}", {"x": 1}), render("[[ x ]] {{ x }}", {"x": 1})]
    escaped = '{{ "a\\1" }}'
    out["backslashes"] = [render(escaped, {}), render(escaped, {}, escape_backslashes=False)]
    before = len(generated)
    condition = trust_as_template("existing.answer.metadata.result | int != 1")
    out["conditions"] = [Templar(loader=DataLoader(), variables={"existing": {"answer": {"metadata": {"result": n}}}})
                         .evaluate_conditional(condition) for n in (0, 1, "1", 2)]
    out["conditions_compiled"] = len(generated) - before
    errors = []
    for _ in range(2):
        try:
            render("{{ x | }}", {"x": 1})
        except Exception as exc:
            errors.append(type(exc).__name__)
    out["errors"] = errors
    print(json.dumps(out))
""")


def test_compiled_once_and_never_for_another_reading():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["hosts"] == ["http://s0/json-api/accountsummary", "http://s1/json-api/createacct",
                            "http://s2/json-api/createacct"]
    assert out["parsed_once"] == 1
    assert out["conditions"] == [True, False, False, True] and out["conditions_compiled"] == 1
    assert out["settings"] == ["1 {{ x }}", "[[ x ]] 1"]
    assert out["backslashes"][0] == "a\\1" and out["backslashes"][1] != out["backslashes"][0]
    assert len(out["errors"]) == 2
