"""Compile each Jinja template once per run, not once per host and task.

Ansible compiles a template every time it renders one (``TemplateEngine._compile_template``:
``env.from_string`` on each call), and each templar has an environment of its own, so Jinja's
own template cache never serves. A run over 160 hosts compiled the same few task arguments
(``{{ panel_url }}/json-api/createacct``, ``whm {{ panel.username }}:…``, the create form) 160
times each: lexing, parsing, generating Python and compiling it took a fifth of the run's CPU
(py-spy, ``bench/cpu_breakdown.py --hosts 160 --forks 16``). Conditions (``when``, panel_call's
``refuse``) go through ``compile_expression``, which parses the expression and compiles the tree
it makes; their code is kept under the expression's text.

The result of ``Environment.compile`` is a code object that names no environment: Jinja binds
it to one when it makes the template (``Template.from_code`` runs it with ``environment`` in
its namespace), and filters and tests are looked up in that environment as the template
renders. So the code is kept per source text and per everything that changes what the compiler
makes of it: the environment's class and its template settings (the fields a template's
``#jinja2:`` header may override, which Ansible's own lexer cache keys on), its extensions, and
whether Ansible escapes backslashes in this compile (``_TemplateCompileContext``). A source that
fails to compile is not kept: it fails, with Ansible's message, each time.
"""

from __future__ import annotations

import threading

from ansible._internal._templating import _jinja_bits
from jinja2.environment import TemplateExpression

LIMIT = 4096   # sources kept; a run's playbook has tens

_compiled: dict[tuple, object] = {}
_storing = threading.Lock()
_expression = threading.local()   # the key of the expression this thread is compiling


def _key(env, source: str, name, filename, defer_init: bool) -> tuple:
    context = _jinja_bits._TemplateCompileContext.current(optional=True)
    return (type(env), tuple(getattr(env, field) for field in _jinja_bits._TEMPLATE_OVERRIDE_FIELD_NAMES),
            tuple(env.extensions), env.optimized, env.is_async,
            None if context is None else context.escape_backslashes,
            str(source), name, filename, defer_init)


def _store(key: tuple, code) -> None:
    with _storing:
        if len(_compiled) >= LIMIT:
            _compiled.pop(next(iter(_compiled)))
        _compiled[key] = code


def cache_compiled_templates() -> None:
    """Make ``AnsibleEnvironment.compile`` keep the code it compiles from a source text, and
    ``compile_expression`` (each ``when`` and ``refuse`` condition) the code of an expression."""
    environment = _jinja_bits.AnsibleEnvironment
    if getattr(environment.compile, "provisiond_cached", False):
        return
    original, original_expression = environment.compile, environment.compile_expression

    def compile(self, source, name=None, filename=None, raw=False, defer_init=False):
        if raw or self._debuggable_template_source:
            return original(self, source, name, filename, raw, defer_init)
        if not isinstance(source, str):
            # An expression's tree, parsed by compile_expression below: kept under its text.
            key, _expression.key = getattr(_expression, "key", None), None
            code = original(self, source, name, filename, raw, defer_init)
            if key is not None:
                _store(key, code)
            return code
        key = _key(self, source, name, filename, defer_init)
        code = _compiled.get(key)
        if code is None:
            code = original(self, source, name, filename, raw, defer_init)
            _store(key, code)
        return code

    def compile_expression(self, source, undefined_to_none=True):
        if not isinstance(source, str) or self._debuggable_template_source:
            return original_expression(self, source, undefined_to_none)
        key = ("expression", undefined_to_none, *_key(self, source, None, None, False))
        code = _compiled.get(key)
        if code is None:
            _expression.key = key
            try:
                return original_expression(self, source, undefined_to_none)
            finally:
                _expression.key = None
        # What Environment.from_string makes of the code, as compile_expression would.
        template = self.template_class.from_code(self, code, self.make_globals(None), None)
        return TemplateExpression(template, undefined_to_none)

    compile.provisiond_cached = True
    environment.compile, environment.compile_expression = compile, compile_expression
