"""Owner directories: native owner values to emails and back, and the problems that name what is missing."""

from __future__ import annotations

import pytest

from closeloop.engine.owners import Directory, OwnerProblem
from closeloop.model import Owner

USERS = [
    Owner("005A", "Sam.Seller@Example.com"),
    Owner("005B", "rita.rep@example.com"),
    Owner("005C", "old.rep@example.com", active=False),
    Owner("005D", "rita.rep@example.com", active=False),  # a deactivated duplicate of Rita
    Owner("005E", ""),  # a user without an email maps nobody
]


@pytest.mark.parametrize(
    ("value", "email"),
    [
        pytest.param("005A", "sam.seller@example.com", id="id-lower-cased-email"),
        pytest.param({"id": "005B", "name": "Rita Rep"}, "rita.rep@example.com", id="lookup-object"),
        pytest.param("005C", "old.rep@example.com", id="inactive-user-still-read"),
        pytest.param({"id": "999", "email": "Zed@Example.com"}, "zed@example.com", id="lookup-naming-its-email"),
        pytest.param(None, None, id="blank"),
        pytest.param("", None, id="empty"),
    ],
)
def test_native_owner_values_read_as_emails(value: object, email: str | None) -> None:
    assert Directory.of("crm", USERS).to_canonical(value) == email


def test_an_unknown_owner_id_is_a_problem_naming_it() -> None:
    with pytest.raises(OwnerProblem, match="owner 777 is not among crm's users"):
        Directory.of("crm", USERS).to_canonical("777")


def test_an_email_maps_to_the_active_user_among_several() -> None:
    assert Directory.of("crm", USERS).to_native("rita.rep@example.com") == "005B"


@pytest.mark.parametrize(
    ("email", "message"),
    [
        pytest.param("nina.new@example.com", "no crm user has the email nina.new@example.com", id="no-user"),
        pytest.param(
            "old.rep@example.com", "the crm user with the email old.rep@example.com is inactive", id="inactive"
        ),
    ],
)
def test_an_email_without_an_assignable_user_is_a_problem_naming_the_email(email: str, message: str) -> None:
    with pytest.raises(OwnerProblem, match=message):
        Directory.of("crm", USERS).to_native(email)


def test_a_system_whose_owner_fields_hold_emails_passes_them_through() -> None:
    emails = Directory.of_emails("marketo")
    assert emails.to_canonical(" Sam.Seller@Example.com ") == "sam.seller@example.com"
    assert emails.to_native("sam.seller@example.com") == "sam.seller@example.com"
