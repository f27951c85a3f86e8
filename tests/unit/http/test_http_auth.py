"""Token auth: refresh before expiry, once on refusal, and a single fetch under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
import respx
from pydantic import SecretStr

from closeloop.http import Action, AuthError, BearerAuth, HttpClient, RefreshingAuth, Token
from closeloop.testing.clock import FakeClock

MakeClient = Callable[..., HttpClient]


class TokenSource:
    """Hands out tok-1, tok-2, ... each valid for ``lifetime`` on the fake clock."""

    def __init__(self, clock: FakeClock, lifetime: timedelta = timedelta(hours=1)) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.issued: list[str] = []

    async def fetch(self) -> Token:
        for _ in range(3):  # yield a few times, as a real token call would, so concurrent callers pile up
            await asyncio.sleep(0)
        value = f"tok-{len(self.issued) + 1}-abcdefgh"
        self.issued.append(value)
        return Token(value, self.clock() + self.lifetime)


def accept_only(valid: str) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") == f"Bearer {valid}":
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(401, json={"message": "expired"})

    return respond


async def test_refused_token_is_refreshed_once_then_the_call_succeeds(
    make_client: MakeClient, clock: FakeClock
) -> None:
    source = TokenSource(clock)
    client = make_client(auth=RefreshingAuth(source.fetch, clock=clock))
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.get("/me").mock(side_effect=accept_only("tok-2-abcdefgh"))
        assert await client.get_json("/me") == {"ok": True}
    assert source.issued == ["tok-1-abcdefgh", "tok-2-abcdefgh"]
    assert route.call_count == 2
    assert client.stats.snapshot().reauths == 1


async def test_token_refused_after_refresh_fails_with_auth_error(make_client: MakeClient, clock: FakeClock) -> None:
    source = TokenSource(clock)
    client = make_client(auth=RefreshingAuth(source.fetch, clock=clock))
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.get("/me").mock(side_effect=accept_only("never"))
        with pytest.raises(AuthError):
            await client.get_json("/me")
    assert len(source.issued) == 2
    assert route.call_count == 2


async def test_static_token_refused_fails_without_a_second_call(make_client: MakeClient) -> None:
    client = make_client(auth=BearerAuth(SecretStr("static-abcdefgh")))
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.get("/me").mock(return_value=httpx.Response(401))
        with pytest.raises(AuthError):
            await client.get_json("/me")
    assert route.call_count == 1


async def test_vendor_reauth_signal_in_a_200_body_refreshes_the_token(
    make_client: MakeClient, clock: FakeClock
) -> None:
    def classifier(response: httpx.Response) -> Action | None:
        errors = response.json().get("errors", [])
        return Action.REAUTH if any(e["code"] in ("601", "602") for e in errors) else None

    source = TokenSource(clock)
    client = make_client(auth=RefreshingAuth(source.fetch, clock=clock), classifier=classifier)
    expired = httpx.Response(200, json={"success": False, "errors": [{"code": "602"}]})
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        mock.get("/leads").mock(side_effect=[expired, httpx.Response(200, json={"success": True})])
        assert await client.get_json("/leads") == {"success": True}
    assert len(source.issued) == 2


async def test_token_is_refreshed_before_expiry_without_a_401(make_client: MakeClient, clock: FakeClock) -> None:
    source = TokenSource(clock, lifetime=timedelta(seconds=3600))
    client = make_client(auth=RefreshingAuth(source.fetch, clock=clock, margin=timedelta(seconds=60)))
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.get("/me").mock(return_value=httpx.Response(200, json={}))
        await client.get_json("/me")
        clock.advance(3500)  # 100 s left: still outside the margin
        await client.get_json("/me")
        assert source.issued == ["tok-1-abcdefgh"]
        clock.advance(50)  # 50 s left: inside the margin
        await client.get_json("/me")
    assert source.issued == ["tok-1-abcdefgh", "tok-2-abcdefgh"]
    sent = [call.request.headers["Authorization"] for call in route.calls]
    assert sent == ["Bearer tok-1-abcdefgh", "Bearer tok-1-abcdefgh", "Bearer tok-2-abcdefgh"]


async def test_hundred_concurrent_requests_fetch_the_token_once(make_client: MakeClient, clock: FakeClock) -> None:
    source = TokenSource(clock)
    client = make_client(auth=RefreshingAuth(source.fetch, clock=clock))
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        route = mock.get("/me").mock(return_value=httpx.Response(200, json={}))
        await asyncio.gather(*(client.get_json("/me") for _ in range(100)))
    assert source.issued == ["tok-1-abcdefgh"]
    assert route.call_count == 100


async def test_hundred_concurrent_refusals_refresh_the_token_once(make_client: MakeClient, clock: FakeClock) -> None:
    source = TokenSource(clock)
    auth = RefreshingAuth(source.fetch, clock=clock)
    client = make_client(auth=auth)
    await auth.header()  # everyone starts with tok-1, which the server no longer accepts
    with respx.mock(base_url=client.base_url, assert_all_called=True) as mock:
        mock.get("/me").mock(side_effect=accept_only("tok-2-abcdefgh"))
        await asyncio.gather(*(client.get_json("/me") for _ in range(100)))
    assert source.issued == ["tok-1-abcdefgh", "tok-2-abcdefgh"]


async def test_custom_scheme_and_header_are_used() -> None:
    auth = BearerAuth("static-abcdefgh", scheme="Custom-oauthtoken", header="X-Auth")
    assert await auth.header() == ("X-Auth", "Custom-oauthtoken static-abcdefgh")


def test_token_from_an_oauth_response_expires_after_expires_in(clock: FakeClock) -> None:
    token = Token.from_oauth({"access_token": "abc-abcdefgh", "expires_in": 3600}, clock())
    assert token.expires_at == clock() + timedelta(hours=1)
    assert "abc-abcdefgh" not in repr(token)
    assert Token.from_oauth({"access_token": "abc-abcdefgh"}, clock()).expires_at is None


async def test_token_fetch_through_an_unauthenticated_client(make_client: MakeClient, clock: FakeClock) -> None:
    token_client = make_client()
    api = make_client(auth=None)

    async def fetch() -> Token:
        payload = await token_client.post_json(
            "/oauth/token", None, data={"grant_type": "client_credentials", "client_secret": "cs-abcdefgh"}
        )
        return Token.from_oauth(payload, clock())

    auth = RefreshingAuth(fetch, clock=clock)
    with respx.mock(base_url=api.base_url, assert_all_called=True) as mock:
        token_route = mock.post("/oauth/token").mock(
            return_value=httpx.Response(200, json={"access_token": "fetched-abcdefgh", "expires_in": 3600})
        )
        assert await auth.header() == ("Authorization", "Bearer fetched-abcdefgh")
    assert "Authorization" not in token_route.calls.last.request.headers
