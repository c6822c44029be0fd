"""Any JSON (or any bytes) into any parser gives a model or a ScanhubError, nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanhub import Promotion, Scan, ScanhubError
from scanhub.sansio import Response, appsecplus, apptrust, iq, threadfix

from .payloads import (
    ASP_SCAN_COMPLETED,
    AT_PROMOTIONS_SAMPLE,
    IQ_APPLICATION_LOOKUP,
    IQ_PROMOTE_RESPONSE,
    IQ_STATUS_COMPLETED,
    IQ_WEBHOOK_EVALUATION,
    TF_PENDING_SCAN_DONE,
    TF_UPLOAD_QUEUED,
)

B = "http://h"

PARSERS: dict[str, Callable[[Response], Any]] = {
    "iq.lookup": lambda r: iq.parse_application_lookup(
        r, source="s", public_id="MyApplicationPublicID"
    ),
    "iq.promote": lambda r: iq.parse_promote(
        r, source="s", base_url=B, application_id="a", target_stage="t", scan_id="x"
    ),
    "iq.status": lambda r: iq.parse_status(
        r, source="s", base_url=B, application_id="a", status_id="b"
    ),
    "iq.webhook": lambda r: iq.parse_evaluation_webhook(dict(r.headers), r.body, source="s"),
    "tf.pending": lambda r: threadfix.parse_pending_scan(r, source="s"),
    "tf.upload": lambda r: threadfix.parse_upload(r, source="s", base_url=B, application_id="1"),
    "asp.list": lambda r: appsecplus.parse_list(r, source="s"),
    "asp.scan": lambda r: appsecplus.parse_scan(r, source="s"),
    "at.list": lambda r: apptrust.parse_promotions(
        r, source="s", application_key="k", version="v", offset=0
    ),
    "at.one": lambda r: apptrust.parse_promotion(r, source="s", application_key="k", version="v"),
}
SEEDS = {
    "iq.lookup": IQ_APPLICATION_LOOKUP,
    "iq.promote": IQ_PROMOTE_RESPONSE,
    "iq.status": IQ_STATUS_COMPLETED,
    "iq.webhook": IQ_WEBHOOK_EVALUATION,
    "tf.pending": TF_PENDING_SCAN_DONE,
    "tf.upload": TF_UPLOAD_QUEUED,
    "asp.list": [ASP_SCAN_COMPLETED],
    "asp.scan": ASP_SCAN_COMPLETED,
    "at.list": AT_PROMOTIONS_SAMPLE,
    "at.one": AT_PROMOTIONS_SAMPLE["promotions"][0],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def _mutations(seed: Any) -> st.SearchStrategy[Any]:
    """The documented payload with one field replaced by any JSON value (or removed)."""
    if isinstance(seed, list):
        return st.lists(_mutations(seed[0]), max_size=2) if seed else st.just([])
    if not isinstance(seed, dict) or not seed:
        return json_values
    keys = sorted(seed)

    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        out = dict(seed)
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            out.pop(key)
        else:
            out[key] = draw(json_values | _mutations(seed[key]))
        return out

    return mutate()


def _check(name: str, status: int, body: bytes) -> None:
    try:
        out = PARSERS[name](Response(status, body, {}, "op", ""))
    except ScanhubError:
        return
    items = (
        out.promotions
        if isinstance(out, apptrust.Page)
        else out
        if isinstance(out, list)
        else [out]
    )
    assert all(isinstance(i, Scan | Promotion | str) for i in items)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=json_values, status=st.sampled_from([200, 200, 201, 400, 401, 404, 409, 429, 500]))
def test_any_json(name: str, data: Any, status: int) -> None:
    _check(name, status, json.dumps(data).encode())


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_documented_payload_with_one_field_broken(name: str, data: st.DataObject) -> None:
    body = data.draw(_mutations(SEEDS[name]))
    _check(name, 200, json.dumps(body).encode())


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=40, deadline=None)
@given(raw=st.binary(max_size=64))
def test_any_bytes(name: str, raw: bytes) -> None:
    _check(name, 200, raw)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_truncated_documented_payload(name: str) -> None:
    body = json.dumps(SEEDS[name]).encode()
    for cut in range(0, len(body), max(1, len(body) // 25)):
        with pytest.raises(ScanhubError):
            PARSERS[name](Response(200, body[:cut], {}, "op", ""))


@pytest.mark.parametrize(
    "text",
    [b'{"status": NaN}', b'{"status": "PENDING", "n": 123456789012345678901234567890}'],
)
def test_what_orjson_refuses_the_stdlib_still_reads(text: bytes) -> None:
    from scanhub.sansio._common import loads

    assert json.dumps(loads(text)) == json.dumps(json.loads(text))


@settings(max_examples=200, deadline=None)
@given(value=json_values | st.integers(min_value=-(10**40), max_value=10**40))
def test_loads_agrees_with_the_stdlib(value: Any) -> None:
    from scanhub.sansio._common import loads

    text = json.dumps(value).encode()
    assert json.dumps(loads(text)) == json.dumps(json.loads(text))
