"""How visitor activities come to exist: the website's tracking code and form handlers.

v5 has no API to create visitor activities; a real business unit records them when its tracking code reports a
page view and when a website posts a form to a form handler. The emulator offers both, public and unsigned as
they are: ``GET /analytics?url=...`` logs a page view of the visitor in the ``visitor_id<account>`` cookie (a new
visitor gets one), and ``POST /l/<account>/<handler>`` (form-encoded, ``email`` required) creates or updates the
latest prospect with that email, logs a form-handler success, and assigns the visitor's earlier page views to
the prospect, as a conversion does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ..fields import FORM_SUCCESS, VIEW

if TYPE_CHECKING:
    from .app import PardotSandbox

ACCOUNT = 1001
FORM_FIELDS = {"email": "email", "first_name": "firstName", "last_name": "lastName", "company": "company"}
UTM = {"utm_source": "sourceParameter", "utm_medium": "mediumParameter", "utm_campaign": "campaignParameter"}


def cookie_name(account: int) -> str:
    """The visitor cookie of an account."""
    return f"visitor_id{account}"


def _visitor(sandbox: PardotSandbox, request: Request) -> tuple[int, bool]:
    """The request's visitor id, and whether it is new."""
    raw = request.cookies.get(cookie_name(ACCOUNT), "")
    if raw.isdigit() and int(raw) in sandbox.visitors:
        return int(raw), False
    visitor = 80_001 + len(sandbox.visitors)
    sandbox.visitors[visitor] = None
    return visitor, True


async def page_view(sandbox: PardotSandbox, request: Request) -> Response:
    """The tracking code's hit: one page view (type 2) of the cookie's visitor, and of its prospect if known."""
    url = request.query_params.get("url")
    if not url:
        return Response("url is required", status_code=400)
    visitor, new = _visitor(sandbox, request)
    prospect = sandbox.visitors[visitor]
    sandbox.log_activity(prospect, sandbox.now(), VIEW, "View", details=url, visitorId=visitor,
                         campaignId=sandbox.campaign_of(url))  # fmt: skip
    response = Response(status_code=204)
    if new:
        response.set_cookie(cookie_name(ACCOUNT), str(visitor))
    return response


async def form_handler(sandbox: PardotSandbox, request: Request) -> Response:
    """A website's form post: upsert the latest prospect by email, log the success, convert the visitor."""
    handler = sandbox.form_handlers.get(str(request.path_params["handler"]))
    if handler is None or request.path_params["account"] != ACCOUNT:
        return Response("form handler not found", status_code=404)
    form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
    if "@" not in form.get("email", ""):
        return Response("email is required", status_code=400)
    visitor, new = _visitor(sandbox, request)
    values = {native: form[name] for name, native in FORM_FIELDS.items() if form.get(name)}
    prospect = sandbox.form_prospect(values, _first_touch(sandbox, visitor, request), handler["campaignId"])
    sandbox.visitors[visitor] = int(prospect.id)
    sandbox.convert(visitor, int(prospect.id))
    page = request.headers.get("referer") or handler["name"]
    sandbox.log_activity(int(prospect.id), sandbox.now(), FORM_SUCCESS, "Success", details=page, visitorId=visitor,
                         formHandlerId=handler["id"], campaignId=handler["campaignId"])  # fmt: skip
    response = Response(status_code=302, headers={"Location": handler["success_url"]})
    if new:
        response.set_cookie(cookie_name(ACCOUNT), str(visitor))
    return response


def _first_touch(sandbox: PardotSandbox, visitor: int, request: Request) -> dict[str, Any]:
    """First-touch UTM parameters, from the visitor's first tracked page (else the posting page)."""
    pages = [str(a.fields.get("details") or "") for a in sandbox.activities_of_visitor(visitor)]
    for url in [*pages, request.headers.get("referer") or ""]:
        found = {UTM[k]: v for k, v in parse_qsl(urlsplit(url).query) if k in UTM and v}
        if found:
            return {**found, "firstReferrerUrl": url}
    return {}
