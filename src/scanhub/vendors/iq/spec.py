"""Sonatype IQ Server's entry in the vendor registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import attrs

from scanhub.vendors import (
    EnvVar,
    Id,
    Lifecycle,
    NotProvided,
    Promotion,
    SourceConfig,
    Text,
    TrackConfig,
    Tracking,
    Vendor,
    VendorSpec,
    WebhookResult,
    need_one,
)

from . import sansio as iq
from .client import IQServer


@attrs.define(kw_only=True)
class IQSource(SourceConfig):
    """A Sonatype IQ Server or Sonatype Cloud source (Cloud: base URL ends in /platform)."""

    username: Text | None = attrs.field(default=None, metadata={"doc": "user or user-token code"})
    username_env: EnvVar | None = attrs.field(
        default=None, metadata={"doc": "variable holding the user name, instead of username"}
    )
    password_env: EnvVar = attrs.field(metadata={"doc": "variable holding the password"})
    csrf_token: Text | None = attrs.field(
        default=None, metadata={"doc": "reverse-proxy CSRF token sent on promote"}
    )
    webhook_secret_env: EnvVar | None = attrs.field(
        default=None,
        metadata={"doc": "variable holding the webhook secret; enables POST /webhooks/iq/NAME"},
    )

    SECRETS: ClassVar[tuple[str, ...]] = ("password",)

    def problems(self) -> list[tuple[str, str]]:
        if (self.username is None) == (self.username_env is None):
            return [("username", "give exactly one of username or username_env")]
        return []


@attrs.define(kw_only=True)
class IQTrack(TrackConfig):
    """An IQ promote-scan request, by the status id from its statusUrl."""

    status_id: Id = attrs.field(metadata={"doc": "the id at the end of the statusUrl"})
    application_id: Id | None = attrs.field(default=None, metadata={"doc": "internal id"})
    public_id: Id | None = attrs.field(default=None, metadata={"doc": "public id (looked up)"})

    def problems(self) -> list[tuple[str, str]]:
        return need_one(self, "application_id", "public_id")


class IQSpec(VendorSpec):
    """Sonatype IQ Server."""

    name = Vendor.IQ.value
    title = "Sonatype IQ Server"
    client = IQServer
    source_schema = IQSource
    track_schema = IQTrack
    demo = "scanhub.vendors.iq.demo:DEMO"

    def make_client(self, source: IQSource, env: Mapping[str, str]) -> IQServer:
        username: str
        if source.username:
            username, password = str(source.username), source.secret("password_env", env)
        else:
            username, password = source.secrets(("username_env", "password_env"), env)
        return IQServer(
            source.base_url,
            username,
            password,
            csrf_token=source.csrf_token,
            **source.client_options(),
        )

    async def resolve_track(self, client: IQServer, track: IQTrack) -> Tracking:
        app: str
        if track.application_id is not None:
            app = track.application_id
        else:
            assert track.public_id is not None  # problems() made sure
            app = await client.application_id(track.public_id)
        placeholder = Promotion(
            Vendor.IQ,
            client.name,
            track.status_id,
            app,
            Lifecycle.UNKNOWN,
            "",
            application_name=track.public_id,
        )
        return Tracking(items=(placeholder,))

    def webhook(
        self, source: IQSource, env: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> WebhookResult:
        """IQ webhooks: `X-Nexus-Webhook-Signature` is the hex HMAC-SHA1 of the body with the
        secret (checked in constant time); `X-Nexus-Webhook-Id` the event type;
        `X-Nexus-Webhook-Delivery` a UUID per delivery. An application evaluation is taken at
        once as a finished scan with its verdict; the application's tracked promotions are
        polled to confirm."""
        if source.webhook_secret_env is None:
            raise NotProvided(f"source {source.source_name!r} has no webhook_secret_env")
        secret = source.secret("webhook_secret_env", env)
        lower = {k.lower(): v for k, v in headers.items()}
        if not iq.verify_webhook(body, lower.get("x-nexus-webhook-signature"), secret):
            return WebhookResult("rejected", "missing or wrong X-Nexus-Webhook-Signature")
        delivery = lower.get("x-nexus-webhook-delivery")
        event = lower.get("x-nexus-webhook-id", "")
        if event != "iq:applicationEvaluation":
            return WebhookResult("ignored", f"event type {event!r} is not handled", delivery)
        scan = iq.parse_evaluation_webhook(
            headers, body, source=source.source_name, base_url=source.base_url
        )
        raw = scan.raw if isinstance(scan.raw, dict) else {}
        app = raw.get("applicationEvaluation", {}).get("application", {})
        internal = app.get("id") if isinstance(app, dict) else None
        confirm = (internal,) if isinstance(internal, str) and internal else ()
        return WebhookResult("applied", "application evaluation", delivery, (scan,), confirm)


SPEC = IQSpec()
