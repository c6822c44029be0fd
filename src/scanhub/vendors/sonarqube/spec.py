"""SonarQube's entry in the vendor registry."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Literal

import attrs

from scanhub.vendors import (
    ConfigError,
    Count,
    EnvVar,
    Id,
    Lifecycle,
    NotProvided,
    PayloadError,
    Scan,
    SourceConfig,
    Text,
    TrackConfig,
    Tracking,
    VendorSpec,
    WebhookResult,
    need_one,
)

from . import sansio as sq
from .client import SonarQube

#: How the token is sent (`sansio.AUTH_MODES`; a test holds the two equal).
AuthMode = Literal["bearer", "basic"]


@attrs.define(kw_only=True)
class SonarQubeSource(SourceConfig):
    """A SonarQube server or SonarCloud (base URL: the server root, https://sonarcloud.io)."""

    token_env: EnvVar = attrs.field(metadata={"doc": "variable holding a user token"})
    auth: AuthMode = attrs.field(
        default="bearer",
        metadata={
            "doc": "bearer (SonarQube 10.0+, SonarCloud) or basic (the token as user name, "
            "empty password: older servers)"
        },
    )
    webhook_secret_env: EnvVar | None = attrs.field(
        default=None,
        metadata={
            "doc": "variable holding the webhook secret; enables POST /webhooks/sonarqube/NAME"
        },
    )

    SECRETS: ClassVar[tuple[str, ...]] = ("token",)


@attrs.define(kw_only=True)
class SonarQubeTrack(TrackConfig):
    """A Compute Engine task: by the report-task.txt a scanner left, by task id, or every
    recent task of a project (discovery)."""

    report_task: Text | None = attrs.field(
        default=None,
        metadata={
            "doc": "path of a scanner's report-task.txt (read when the track is resolved; "
            "relative to the working directory)"
        },
    )
    task_id: Id | None = attrs.field(default=None, metadata={"doc": "a Compute Engine task id"})
    project_key: Id | None = attrs.field(
        default=None, metadata={"doc": "the project key; alone: every recent task of it"}
    )
    status: Text | None = attrs.field(
        default=None,
        metadata={"doc": "discovery filter: comma-separated task statuses (default: all)"},
    )
    task_type: Text | None = attrs.field(
        default=None, metadata={"doc": "discovery filter: task type, e.g. REPORT"}
    )
    max_tasks: Count | None = attrs.field(
        default=None, metadata={"doc": "discovery: how many recent tasks at most (default 100)"}
    )

    LOCAL_FILES: ClassVar[Mapping[str, str]] = {
        "report_task": "send task_id and project_key (ceTaskId and projectKey in the file)"
    }

    def problems(self) -> list[tuple[str, str]]:
        if self.report_task is not None and (
            self.task_id is not None or self.project_key is not None
        ):
            return [
                (
                    "report_task",
                    "report_task names the task and the project itself; give it alone",
                )
            ]
        found = need_one(self, "report_task", "task_id", "project_key")
        if found:
            return found
        if self.report_task is not None or self.task_id is not None:
            for key in ("status", "task_type", "max_tasks"):
                if getattr(self, key) is not None:
                    return [(key, "only with project_key alone (discovery of a project's tasks)")]
        return []


class SonarQubeSpec(VendorSpec):
    """SonarQube."""

    name = sq.VENDOR
    title = "SonarQube"
    client = SonarQube
    source_schema = SonarQubeSource
    track_schema = SonarQubeTrack
    demo = "scanhub.vendors.sonarqube.demo:DEMO"

    def make_client(self, source: SonarQubeSource, env: Mapping[str, str]) -> SonarQube:
        return SonarQube(
            source.base_url,
            source.secret("token_env", env),
            auth=source.auth,
            **source.client_options(),
        )

    async def resolve_track(self, client: SonarQube, track: SonarQubeTrack) -> Tracking:
        if track.report_task is not None:
            report = await read_report_task(track.report_task, source=client.name)
            if report.project_key is None:
                return Tracking(items=(await client.task(report.ce_task_id),))
            return Tracking(items=(sq.scan_from_report_task(report, source=client.name),))
        if track.task_id is not None and track.project_key is not None:
            placeholder = Scan(
                sq.VENDOR, client.name, track.task_id, track.project_key, Lifecycle.UNKNOWN, ""
            )
            return Tracking(items=(placeholder,))
        if track.task_id is not None:
            # The item's key names its project: ask the server which one it is.
            return Tracking(items=(await client.task(track.task_id),))
        assert track.project_key is not None  # problems() made sure
        query: dict[str, str] = {"project_key": track.project_key}
        for key in ("status", "task_type", "max_tasks"):
            value = getattr(track, key)
            if value is not None:
                query[key] = str(value)
        return Tracking(query=query)

    def webhook(
        self,
        source: SonarQubeSource,
        env: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> WebhookResult:
        """SonarQube webhooks: `X-Sonar-Webhook-HMAC-SHA256` is the hex HMAC-SHA256 of the raw
        body with the webhook's secret (checked in constant time); a missing or wrong one is
        rejected. A delivery about a task is taken at once as the task's final state (SUCCESS
        with the quality gate's verdict, or FAILED), and the project's tracked tasks are polled
        to confirm; one about no task (a quality gate change after an issue update) is
        ignored."""
        if source.webhook_secret_env is None:
            raise NotProvided(f"source {source.source_name!r} has no webhook_secret_env")
        secret = source.secret("webhook_secret_env", env)
        lower = {k.lower(): v for k, v in headers.items()}
        if not sq.verify_webhook(body, lower.get(sq.SIGNATURE_HEADER), secret):
            return WebhookResult("rejected", "missing or wrong X-Sonar-Webhook-HMAC-SHA256")
        delivery = sq.delivery_id(body)
        scan = sq.parse_webhook(lower, body, source=source.source_name, base_url=source.base_url)
        if scan is None:
            return WebhookResult(
                "ignored", "no taskId: a quality gate change, not a task's end", delivery
            )
        return WebhookResult(
            "applied", f"task {scan.vendor_status}", delivery, (scan,), (scan.application_id,)
        )


#: The most of a report-task.txt read: a scanner writes a few hundred bytes.
MAX_REPORT_TASK = 1 << 20


async def read_report_task(path: str, *, source: str = sq.VENDOR) -> sq.ReportTask:
    """Read and parse a scanner's report-task.txt; a file that cannot be read, or is not one
    (not a regular file, larger than `MAX_REPORT_TASK`, no task id in it), is a `ConfigError`
    naming it: the track's to mend."""

    def refused(why: str) -> ConfigError:
        return ConfigError(
            f"report_task: {why} (the scanner writes it after uploading its report,"
            " e.g. .scannerwork/report-task.txt)",
            vendor=sq.VENDOR,
            source=source,
            operation="read report-task.txt",
        )

    try:
        data = await asyncio.to_thread(_read, path)
    except OSError as exc:
        raise refused(f"cannot read {path!r}: {exc.strerror or exc}") from None
    except _NotAReportTask as exc:
        raise refused(f"cannot read {path!r}: {exc}") from None
    try:
        return sq.parse_report_task(data, source=source)
    except PayloadError as exc:
        raise refused(f"{path!r} is not a scanner's report-task.txt: {exc.message}") from None


class _NotAReportTask(Exception):
    pass


def _read(path: str) -> bytes:
    # Not blocking on a FIFO, not reading a device or a huge file to the end: the read is on a
    # thread that nothing can cancel.
    fd = os.open(Path(path).expanduser(), os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotAReportTask("not a regular file")
        data = f.read(MAX_REPORT_TASK + 1)
    if len(data) > MAX_REPORT_TASK:
        raise _NotAReportTask(f"larger than {MAX_REPORT_TASK} bytes")
    return data


SPEC = SonarQubeSpec()
