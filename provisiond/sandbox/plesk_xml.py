"""The two Plesk XML API reads provisiond makes, for the Plesk simulator.

``POST /enterprise/control/agent.php``, ``Content-Type: text/xml``, authenticated by a secret key
in the ``KEY`` header (or ``HTTP_AUTH_LOGIN`` / ``HTTP_AUTH_PASSWD`` as admin). Sources:

- transport, packet and ``KEY`` header:
  https://docs.plesk.com/en-US/obsidian/api-rpc/about-xml-api/xml-api-packets/packet-structure.28722 ,
  https://docs.plesk.com/en-US/obsidian/api-rpc/about-xml-api/xml-api-packets/a-sample-packet.50169 ,
  https://docs.plesk.com/en-US/obsidian/api-rpc/about-xml-api/reference/managing-secret-keys.37121
- ``<webspace><get>`` with the ``<subscriptions/>`` dataset, whose ``plan-guid`` is the
  subscription's service plan (and its add-on plans'):
  https://docs.plesk.com/en-US/obsidian/api-rpc/about-xml-api/reference/managing-subscriptions/getting-information-about-subscriptions.33899/ ,
  https://docs.plesk.com/en-US/onyx/api-rpc/about-xml-api/reference/managing-subscriptions/subscription-settings/subscription-statuses-and-associated-plans.66383
- ``<service-plan><get>`` filtered by ``<name>``, answering the plan's ``guid``:
  https://docs.plesk.com/en-US/onyx/api-rpc/reference/managing-service-plans/getting-information-on-service-plans.32915 ,
  https://docs.plesk.com/en-US/obsidian/api-rpc/about-xml-api/reference/managing-service-plans/available-filters.32907

The XML API answers HTTP 200 whatever happens: a failed operation is a ``<result>`` with
``<status>error</status>``, ``<errcode>`` and ``<errtext>`` (1013: object not found); a refused
login is ``<system><status>error</status><errcode>1001</errcode>`` for the whole packet.
"""

from __future__ import annotations

import hmac
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from provisiond.sandbox.base import Request, Response

PATH = "/enterprise/control/agent.php"
VERSION = "1.6.9.1"
NOT_FOUND = 1013


def handle(sim, request: Request) -> Response:
    """Answer one packet; ``sim`` is the PleskSimulator (its lock is held)."""
    if request.method != "POST":
        return _packet(_system_error(1002, "Method not allowed: the XML API takes POST only."))
    if not _authorized(sim, request.headers):
        return _packet(_system_error(1001, "Authentication failed - wrong password."))
    try:
        root = ET.fromstring(request.body or b"")
    except ET.ParseError as exc:
        return _packet(_system_error(1014, f"Parser error: Request is invalid. {exc}"))
    if root.tag != "packet":
        return _packet(_system_error(1014, "Parser error: Request is invalid. The root node must be packet."))
    parts = []
    for operator in root:
        answer = OPERATORS.get((operator.tag, tuple(op.tag for op in operator)))
        if answer is None:
            return _packet(_system_error(1014, f"Parser error: Request is invalid. Unsupported "
                                               f"operator or operation <{operator.tag}>."))
        parts.append(answer(sim, operator[0]))
    return _packet("".join(parts))


def _authorized(sim, headers: dict[str, str]) -> bool:
    if "key" in headers:
        return hmac.compare_digest(headers["key"].encode(), sim.api_key.encode())
    if sim.admin_password is None or headers.get("http_auth_login") != "admin":
        return False
    return hmac.compare_digest(headers.get("http_auth_passwd", "").encode(), sim.admin_password.encode())


def _webspace_get(sim, get) -> str:
    names = [n.text or "" for n in get.findall("filter/name")]
    with_plans = get.find("dataset/subscriptions") is not None
    results = []
    for name in names:
        sub = sim.subscriptions.get(name.lower())
        if sub is None:
            results.append(_error(name, NOT_FOUND, "webspace does not exist"))
            continue
        data = ""
        if with_plans:
            guid = sim.plan_guids.get(sub.plan) if sub.plan else None
            plan = f"<plan><plan-guid>{guid}</plan-guid></plan>" if guid else ""
            data = ("<subscriptions><subscription><locked>false</locked>"
                    f"<synchronized>false</synchronized>{plan}</subscription></subscriptions>")
        results.append(f"<result><status>ok</status><filter-id>{escape(name)}</filter-id>"
                       f"<id>{sub.id}</id><data>{data}</data></result>")
    return f"<webspace><get>{''.join(results)}</get></webspace>"


def _service_plan_get(sim, get) -> str:
    results = []
    for node in get.findall("filter/name"):
        name = node.text or ""
        if name not in sim.plan_guids:
            results.append(_error(name, NOT_FOUND, "service plan does not exist"))
            continue
        results.append(f"<result><status>ok</status><filter-id>{escape(name)}</filter-id>"
                       f"<id>{sorted(sim.plans).index(name) + 1}</id>"
                       f"<guid>{sim.plan_guids[name]}</guid><name>{escape(name)}</name></result>")
    return f"<service-plan><get>{''.join(results)}</get></service-plan>"


OPERATORS = {("webspace", ("get",)): _webspace_get, ("service-plan", ("get",)): _service_plan_get}


def _error(filter_id: str, code: int, text: str) -> str:
    return (f"<result><status>error</status><errcode>{code}</errcode><errtext>{escape(text)}</errtext>"
            f"<filter-id>{escape(filter_id)}</filter-id></result>")


def _system_error(code: int, text: str) -> str:
    return f"<system><status>error</status><errcode>{code}</errcode><errtext>{escape(text)}</errtext></system>"


def _packet(inner: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<packet version="{VERSION}">{inner}</packet>'
    return Response(200, body.encode(), "text/xml")
