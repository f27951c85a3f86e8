"""Form submissions of contacts, each a touch with its own time, page and UTM values.

HubSpot lists a contact's submissions (form, time, page URL and title) only through the contacts v1 batch read
(``formSubmissionMode=all``, 100 contacts a call); closeloop asks for the contacts whose conversion properties say
they submitted a form. The UTM values are those of the page the form was filled on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from closeloop.model import Touchpoint

from .api import MAX_BATCH, HubSpotApi

SUBMISSIONS_PATH = "/contacts/v1/contact/vids/batch/"


def submitted(props: Mapping[str, Any]) -> bool:
    """True when a contact's conversion properties say it submitted a form."""
    count = str(props.get("num_conversion_events") or "0")
    return bool(props.get("first_conversion_date")) or (count.isdigit() and int(count) > 0)


async def read_submissions(api: HubSpotApi, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Every form submission of these contacts, by contact id (contacts HubSpot does not know are left out)."""
    found: dict[str, list[dict[str, Any]]] = {}
    wanted = list(dict.fromkeys(ids))
    for start in range(0, len(wanted), MAX_BATCH):
        params = {"vid": wanted[start : start + MAX_BATCH], "formSubmissionMode": "all", "property": "email"}
        body = await api.get(SUBMISSIONS_PATH, params)
        for vid, contact in body.items():
            if isinstance(contact, dict):
                found[str(vid)] = [s for s in contact.get("form-submissions") or [] if isinstance(s, dict)]
    return found


def page_utm(url: str) -> dict[str, str]:
    """The ``utm_*`` values of a page URL's query."""
    return {k: v for k, v in parse_qsl(urlsplit(url).query) if k.startswith("utm_") and v}


def submission_touch(contact_id: str, submission: Mapping[str, Any]) -> Touchpoint | None:
    """A form fill at its submission time, with its page's UTM values (and so campaign and channel)."""
    stamp = submission.get("timestamp")
    if not isinstance(stamp, int | str) or not str(stamp).isdigit():
        return None
    utm = page_utm(str(submission.get("page-url") or ""))
    return Touchpoint(
        contact_id,
        datetime.fromtimestamp(int(stamp) / 1000, UTC),
        "form_fill",
        campaign=utm.get("utm_campaign"),
        utm=utm,
        detail=str(submission.get("title") or submission.get("form-id") or "") or None,
    )
