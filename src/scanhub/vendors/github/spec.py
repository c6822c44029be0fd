"""GitHub code scanning's entry in the vendor registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal
from urllib.parse import urlsplit

import attrs

from scanhub.vendors import (
    BadRequestError,
    EnvVar,
    Id,
    Lifecycle,
    Scan,
    SourceConfig,
    Text,
    TrackConfig,
    Tracking,
    VendorSpec,
)

from . import sansio as github
from .client import GitHubCodeScanning

#: The REST API versions scanhub follows: `sansio.API_VERSIONS` (a test holds the two equal).
ApiVersion = Literal["2022-11-28", "2026-03-10"]


@attrs.define(kw_only=True)
class GitHubSource(SourceConfig):
    """GitHub code scanning: base URL https://api.github.com, or https://HOST/api/v3 on GitHub
    Enterprise Server."""

    token_env: EnvVar = attrs.field(
        metadata={
            "doc": "variable holding the token (personal access token, fine-grained or classic, "
            "or a GitHub App installation token)"
        }
    )
    api_version: ApiVersion = attrs.field(
        default="2022-11-28", metadata={"doc": "the X-GitHub-Api-Version header"}
    )
    fetch_findings: bool = attrs.field(
        default=True,
        metadata={"doc": "read a finished upload's analyses once for its result count"},
    )

    SECRETS: ClassVar[tuple[str, ...]] = ("token",)

    def problems(self) -> list[tuple[str, str]]:
        host = (urlsplit(self.base_url).hostname or "").lower()
        if host in ("github.com", "www.github.com"):
            return [
                (
                    "base_url",
                    f"give the REST API root: {github.DOTCOM_API} (or https://HOST/api/v3 for "
                    "GitHub Enterprise Server), not the web address",
                )
            ]
        return []


@attrs.define(kw_only=True)
class GitHubTrack(TrackConfig):
    """A SARIF upload, by the id its upload answered with."""

    repository: Text = attrs.field(metadata={"doc": "owner/repo"})
    sarif_id: Id = attrs.field(metadata={"doc": "the SARIF id (the upload answer's id)"})

    def problems(self) -> list[tuple[str, str]]:
        try:
            github.split_repository(self.repository)
        except BadRequestError:
            return [("repository", f"expected owner/repo, got {self.repository!r}")]
        return []


class GitHubSpec(VendorSpec):
    """GitHub code scanning (SARIF uploads)."""

    name = github.VENDOR
    title = "GitHub code scanning"
    client = GitHubCodeScanning
    source_schema = GitHubSource
    track_schema = GitHubTrack
    demo = "scanhub.vendors.github.demo:DEMO"

    def make_client(self, source: GitHubSource, env: Mapping[str, str]) -> GitHubCodeScanning:
        return GitHubCodeScanning(
            source.base_url,
            source.secret("token_env", env),
            api_version=source.api_version,
            fetch_findings=source.fetch_findings,
            **source.client_options(),
        )

    async def resolve_track(self, client: GitHubCodeScanning, track: GitHubTrack) -> Tracking:
        placeholder = Scan(
            github.VENDOR,
            client.name,
            track.sarif_id,
            track.repository,
            Lifecycle.UNKNOWN,
            "",
            scan_type="sarif",
        )
        return Tracking(items=(placeholder,))


SPEC = GitHubSpec()
