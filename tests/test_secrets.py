"""`Secret` and `Redactor` (`scanhub._secrets`): what a credential shows, and what the scrubber
leaves of a text that carries one. Each test pins an exact output: a scrubber that removes too
much hides what a log line was about, one that removes too little leaks the rest of a secret."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from scanhub._secrets import REDACTED, Redactor, Secret


def test_a_secret_wrapping_a_secret_holds_the_value_not_its_mask() -> None:
    inner = Secret("tok-1234")
    outer = Secret(inner)
    assert outer.reveal() == "tok-1234"
    assert str(outer) == repr(outer).split("'")[1] == f"{outer}" == REDACTED


def test_secrets_compare_and_hash_by_value_and_never_equal_their_text() -> None:
    a, same, other = Secret("tok-1234"), Secret("tok-1234"), Secret("tok-5678")
    assert a == same and hash(a) == hash(same)
    assert a != other and a != "tok-1234"
    assert len({a, same, other}) == 2
    assert bool(a) and not bool(Secret(""))


def test_a_secret_of_four_characters_is_scrubbed_one_of_three_is_not() -> None:
    """Shorter than four would mangle ordinary words; four is the least that is scrubbed."""
    assert Redactor(["wxyz"])("key wxyz.") == f"key {REDACTED}."
    assert Redactor(["xyz"])("key xyz.") == "key xyz."


def test_a_short_value_does_not_stop_the_values_after_it_being_scrubbed() -> None:
    red = Redactor(["ab", Secret("long-secret-1"), "cd", "long-secret-2"])
    assert red("1 long-secret-1 2 long-secret-2") == f"1 {REDACTED} 2 {REDACTED}"


def test_each_encoded_form_is_scrubbed_whole() -> None:
    """As sent, URL-encoded (path and form) and as a JSON string carries it: each form goes
    whole, with nothing of it left on either side."""
    secret = 'p"a\\ss/w rd'
    red = Redactor([Secret(secret)])
    carried = json.dumps({"password": secret}, separators=(",", ":"))
    assert red(carried) == '{"password":"***"}'
    assert red(f"/x/{quote(secret, safe='')}/y") == f"/x/{REDACTED}/y"
    assert red("q=p%22a%5Css%2Fw+rd&n=1") == f"q={REDACTED}&n=1"


@pytest.mark.parametrize(
    "carried",
    [
        '{"error":"invalid token Zm9v\\/YmFy+c2VjcmV0\\/LONG"}',  # PHP's json_encode: `\/`
        "<p>invalid token Zm9v&#x2F;YmFy+c2VjcmV0&#x2F;LONG</p>",  # OWASP's HTML encoder
        "<p>invalid token Zm9v&#47;YmFy+c2VjcmV0&#47;LONG</p>",
        "GET /x/Zm9v/YmFy%2Bc2VjcmV0/LONG",  # a path, slashes kept
    ],
)
def test_a_secret_is_scrubbed_as_json_html_and_paths_write_its_slashes(carried: str) -> None:
    red = Redactor([Secret("Zm9v/YmFy+c2VjcmV0/LONG")])
    assert "LONG" not in red(carried) and REDACTED in red(carried), red(carried)
    assert red.scrub_bytes(carried.encode()).count(REDACTED.encode()) == 1


def test_a_secret_with_html_specials_is_scrubbed_escaped() -> None:
    red = Redactor([Secret("a<b>&c'd")])
    assert red("said: a&lt;b&gt;&amp;c&#x27;d.") == f"said: {REDACTED}."


def test_a_secret_inside_a_longer_one_leaves_nothing_of_the_longer() -> None:
    """Two credentials where one holds the other (a password that is part of a token): the
    longer is scrubbed first, whatever their order in the text or the alphabet."""
    assert Redactor(["abcd1", "0abcd1"])("t=0abcd1 p=abcd1") == f"t={REDACTED} p={REDACTED}"
    # The Basic pair's base64 form, added later, holds a configured value.
    red = Redactor(["aW46YWRt"])
    red.add_basic("admin", "admin123")
    assert red("Basic YWRtaW46YWRtaW4xMjM=") == f"Basic {REDACTED}"
    assert red("x aW46YWRt y") == f"x {REDACTED} y"


def test_an_authorization_value_is_scrubbed_by_its_shape_and_its_scheme_kept() -> None:
    """A credential nobody configured (a vendor echoing another one) still goes when it is
    an Authorization header's value; the scheme stays, to say what was there."""
    red = Redactor()
    assert red("Authorization: Bearer eyJ0.eyJz.c2ln") == f"Authorization: Bearer {REDACTED}"
    assert red("{'authorization': 'tok-9f8e'}") == f"{{'authorization': '{REDACTED}'}}"
    assert red('"Authorization":"Basic dXNlcjpwYXNz"') == f'"Authorization":"Basic {REDACTED}"'
    assert red("GET /x?api_key=abc123&page=2") == f"GET /x?api_key={REDACTED}&page=2"


def test_a_request_shows_no_credential_in_its_repr() -> None:
    """A custom transport's log, a failed assertion printing what was sent: the request's
    repr masks credential headers and secret parameters, and keeps the rest."""
    from scanhub.sansio import Request

    req = Request(
        "GET",
        "https://tf.example/rest/v2.8/applications/1",
        "op",
        params=(("apiKey", "tf-key-0001"), ("page", "2")),
        headers={
            "Authorization": "Bearer at-0001",
            "x-api-key": "dt-key-0001",
            "Accept": "application/json",
        },
    )
    shown = repr(req)
    assert not any(s in shown for s in ("tf-key-0001", "at-0001", "dt-key-0001")), shown
    assert "('page', '2')" in shown and "'Accept': 'application/json'" in shown
    assert req.headers["Authorization"] == "Bearer at-0001"  # the request itself unchanged


def _carried(secret: str) -> list[str]:
    """Every way a vendor's or a receiver's text may carry `secret` back, written here apart
    from the redactor's own list."""
    import html as html_module
    from urllib.parse import quote_plus

    ascii_json = json.dumps(secret)[1:-1]
    utf8_json = json.dumps(secret, ensure_ascii=False)[1:-1]
    escaped = html_module.escape(secret)
    return [
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        ascii_json,
        ascii_json.replace("/", "\\/"),
        utf8_json,
        utf8_json.replace("/", "\\/"),
        escaped,
        escaped.replace("/", "&#x2F;"),
        escaped.replace("/", "&#x2f;"),
        escaped.replace("/", "&#47;"),
    ]


@pytest.mark.parametrize("form", range(12))
def test_every_carried_form_of_a_secret_goes_whole(form: int) -> None:
    """A secret with a quote, a slash, a space, an HTML special and a non-ASCII letter: each
    form differs from the others, and each is scrubbed whole, with nothing left around it."""
    secret = 'p"ä/ss wd<'
    carried = _carried(secret)
    assert len(set(carried)) == 12  # every form its own
    red = Redactor([Secret(secret)])
    assert red(f"[{carried[form]}]") == f"[{REDACTED}]", carried[form]
    assert red.scrub_bytes(f"[{carried[form]}]".encode()) == f"[{REDACTED}]".encode()
