"""The SOAP API's ``merge`` call, the one API through which Salesforce merges records (REST has none).

``POST /services/Soap/u/{version}`` with a partner-WSDL envelope: the session id (an OAuth access token) in the
``SessionHeader``, and ``merge/request`` naming the ``masterRecord`` (its type and Id) and up to two
``recordToMergeIds``. The losers are deleted with ``MasterRecordId`` set, and their related records (contact
roles, campaign members) move to the master, as Salesforce does. The answer is a ``mergeResponse`` result, or a
SOAP fault for a bad session or envelope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "urn:partner.soap.sforce.com"
SOBJECT = "urn:sobject.partner.soap.sforce.com"
MAX_MERGED = 2
RELATED = {"Contact": (("OpportunityContactRole", "ContactId"), ("CampaignMember", "ContactId")),
           "Lead": (("CampaignMember", "LeadId"),)}  # fmt: skip


class MergeRefused(Exception):
    """A merge the org refuses: (status code, message) as the result's errors say."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _xml(body: str) -> Response:
    envelope = (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" '
                f'xmlns="{PARTNER}"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>')  # fmt: skip
    return Response(envelope, media_type="text/xml; charset=utf-8")


def fault(code: str, message: str) -> Response:
    """A SOAP fault (HTTP 500), as the API answers a bad session or a malformed request."""
    response = _xml(f"<soapenv:Fault><faultcode>sf:{code}</faultcode>"
                    f"<faultstring>{escape(f'{code}: {message}')}</faultstring></soapenv:Fault>")  # fmt: skip
    response.status_code = 500
    return response


def merge_result(master: str, merged: list[str], related: list[str]) -> Response:
    """A successful ``mergeResponse``."""
    ids = "".join(f"<mergedRecordIds>{i}</mergedRecordIds>" for i in merged)
    moved = "".join(f"<updatedRelatedIds>{i}</updatedRelatedIds>" for i in related)
    return _xml(f"<mergeResponse><result><id>{master}</id>{ids}<success>true</success>{moved}</result></mergeResponse>")


def refused_result(master: str, code: str, message: str) -> Response:
    """A ``mergeResponse`` whose result failed."""
    errors = f"<errors><message>{escape(message)}</message><statusCode>{code}</statusCode></errors>"
    return _xml(f"<mergeResponse><result>{errors}<id>{master}</id><success>false</success></result></mergeResponse>")


def parse_merge(text: bytes) -> tuple[str, str, str, list[str]]:
    """(session id, sObject type, master id, ids to merge) of a merge envelope; ValueError when it is not one."""
    try:
        root = ElementTree.fromstring(text)  # noqa: S314 - the emulator's own test clients; expat expands no entities
    except ElementTree.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from None
    session = root.findtext(f".//{{{PARTNER}}}SessionHeader/{{{PARTNER}}}sessionId") or ""
    request = root.find(f".//{{{PARTNER}}}merge/{{{PARTNER}}}request")
    master = request.find(f"{{{PARTNER}}}masterRecord") if request is not None else None
    if request is None or master is None:
        raise ValueError("the body holds no merge request with a masterRecord")
    kind = master.findtext(f"{{{SOBJECT}}}type") or ""
    master_id = master.findtext(f"{{{SOBJECT}}}Id") or ""
    losers = [e.text or "" for e in request.findall(f"{{{PARTNER}}}recordToMergeIds")]
    return session.strip(), kind.strip(), master_id.strip(), [i.strip() for i in losers]


async def merge_endpoint(request: Request, valid_session: Callable[[str], bool], merge: Callable[..., Any]) -> Response:
    """``POST /services/Soap/u/{version}``: check the session, then merge (``merge(type, master, losers)``)."""
    try:
        session, kind, master, losers = parse_merge(await request.body())
    except ValueError as exc:
        return fault("INVALID_REQUEST", str(exc))
    if not valid_session(session):
        return fault("INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session")
    if not losers or len(losers) > MAX_MERGED:
        return refused_result(master, "INVALID_ID_FIELD", f"merge takes 1 to {MAX_MERGED} records to merge")
    try:
        moved = merge(kind, master, losers)
    except MergeRefused as refused:
        return refused_result(master, refused.code, str(refused))
    return merge_result(master, losers, moved)
