"""Thin async clients: each composes its vendor's pure functions with the shared transport."""

from __future__ import annotations

import abc
import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import aiohttp

from ._errors import BadRequestError, ScanhubError
from ._model import Item, Promotion, Scan, Vendor
from ._ratelimit import RateLimit
from ._secrets import Redactor, Secret
from ._transport import RetryPolicy, Timeouts, Transport
from .sansio import appsecplus, apptrust, iq, threadfix
from .sansio._common import FilePart, Request, Response

T = TypeVar("T")


class Client(abc.ABC):
    """What every vendor client shares: configuration, session ownership, `refresh`.

    The client that opens a session closes it: pass `session=` to share one (the `ScanHub` does)
    and it is left open; otherwise the client makes its own on first use and closes it in
    `__aexit__` / `close()`.
    """

    vendor: ClassVar[Vendor]

    def __init__(
        self,
        base_url: str,
        *,
        name: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        verify_tls: bool = True,
        auth_headers: dict[str, str] | None = None,
        auth_params: tuple[tuple[str, str], ...] = (),
        secrets: tuple[Secret, ...] = (),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not base_url or "://" not in base_url:
            raise BadRequestError(
                f"base_url must be an absolute http(s) URL, got {base_url!r}",
                vendor=self.vendor.value,
                source=name,
                operation="configure",
            )
        self.base_url = base_url.rstrip("/")
        self.name = name or self.vendor.value
        self._session = session
        self._owns_session = session is None
        self.transport = Transport(
            vendor=self.vendor.value,
            source=self.name,
            session_factory=self._get_session,
            auth_headers=auth_headers,
            auth_params=auth_params,
            redactor=Redactor(secrets),
            timeouts=timeouts,
            retry=retry,
            rate_limit=rate_limit,
            verify_tls=verify_tls,
            clock=clock,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, name={self.name!r})"

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if not self._owns_session:
                raise ScanhubError(
                    "the shared aiohttp session is closed",
                    vendor=self.vendor.value,
                    source=self.name,
                )
            self._session = aiohttp.ClientSession()
        return self._session

    def _adopt_session(self, session: aiohttp.ClientSession) -> None:
        """Use a session owned by someone else (the ScanHub) unless one was given already."""
        if self._owns_session and (self._session is None or self._session.closed):
            self._session = session
            self._owns_session = False

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client opened it."""
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def _call(self, req: Request, parse: Callable[[Response], T]) -> T:
        try:
            return parse(await self.transport.send(req))
        except ScanhubError as error:
            raise self.transport.scrub(error) from error.__cause__

    def _check_mine(self, item: Item) -> None:
        if item.vendor is not self.vendor or item.source != self.name:
            raise BadRequestError(
                f"{item.key} belongs to {item.vendor.value}/{item.source}, not to this client",
                vendor=self.vendor.value,
                source=self.name,
                operation="refresh",
            )

    @abc.abstractmethod
    async def refresh(self, item: Any) -> Any:
        """The latest state of a Scan or Promotion this client produced."""


class IQServer(Client):
    """Sonatype IQ Server / Sonatype Cloud (promote scan and its status).

    `username`/`password` may be a user token pair (userCode/passCode). For Sonatype Cloud give
    the base URL with its `/platform` prefix and consider `rate_limit=RateLimit.iq_cloud()`.
    `csrf_token` is sent as header and cookie on mutating calls behind reverse-proxy auth.
    """

    vendor = Vendor.IQ

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str | Secret,
        *,
        csrf_token: str | None = None,
        retry: RetryPolicy | None = None,
        **kw: Any,
    ) -> None:
        self._password = Secret(password)
        self._csrf = csrf_token
        super().__init__(
            base_url,
            auth_headers=iq.auth_headers(username, self._password.reveal()),
            secrets=(self._password,),
            # IQ Cloud's 429 sends no Retry-After and asks for 5 minutes.
            retry=retry or RetryPolicy(default_429_wait=iq.CLOUD_429_WAIT),
            **kw,
        )
        self.transport.redact.add_basic(username, self._password.reveal())

    async def application_id(self, public_id: str) -> str:
        """The internal id of the application with this public id."""
        return await self._call(
            iq.build_application_lookup(self.base_url, public_id),
            lambda r: iq.parse_application_lookup(r, source=self.name, public_id=public_id),
        )

    async def promote_scan(
        self,
        application_id: str,
        *,
        target_stage: str,
        scan_id: str | None = None,
        source_stage: str | None = None,
    ) -> Promotion:
        """Submit a promotion of `scan_id` (or of the latest scan of `source_stage`)."""
        req = iq.build_promote(
            self.base_url,
            application_id,
            target_stage=target_stage,
            scan_id=scan_id,
            source_stage=source_stage,
            csrf_token=self._csrf,
            source=self.name,
        )
        return await self._call(
            req,
            lambda r: iq.parse_promote(
                r,
                source=self.name,
                base_url=self.base_url,
                application_id=application_id,
                target_stage=target_stage,
                scan_id=scan_id,
                source_stage=source_stage,
            ),
        )

    async def promotion(self, application_id: str, status_id: str) -> Promotion:
        """The state of a promote-scan request."""
        return await self._call(
            iq.build_status(self.base_url, application_id, status_id),
            lambda r: iq.parse_status(
                r,
                source=self.name,
                base_url=self.base_url,
                application_id=application_id,
                status_id=status_id,
            ),
        )

    async def refresh(self, item: Promotion) -> Promotion:
        """Poll the status of a promotion this client submitted or fetched."""
        self._check_mine(item)
        return await self._call(
            iq.build_status(self.base_url, item.application_id, item.id),
            lambda r: iq.parse_status(r, source=self.name, base_url=self.base_url, previous=item),
        )


class ThreadFix(Client):
    """ThreadFix (scan upload and pending-scan status).

    `api_key_in_query=True` sends the key as `?apiKey=` for old servers (it is redacted from
    every log line and error).
    """

    vendor = Vendor.THREADFIX

    def __init__(
        self,
        base_url: str,
        api_key: str | Secret,
        *,
        api_version: str = "latest",
        api_key_in_query: bool = False,
        **kw: Any,
    ) -> None:
        self._api_key = Secret(api_key)
        self.api_version = api_version
        key = self._api_key.reveal()
        headers = threadfix.auth_headers(key)
        params: tuple[tuple[str, str], ...] = ()
        if api_key_in_query:
            headers = {"Accept": "application/json"}
            params = threadfix.auth_params(key)
        super().__init__(
            base_url, auth_headers=headers, auth_params=params, secrets=(self._api_key,), **kw
        )

    async def upload_scan(
        self, application_id: str | int, file: str | Path | bytes, *, filename: str | None = None
    ) -> Scan:
        """Upload a scanner's result file; returns the queued pending scan."""
        if isinstance(file, bytes):
            content, name = file, filename or "scan"
        else:
            path = Path(file)
            content, name = await asyncio.to_thread(path.read_bytes), filename or path.name
        app = str(application_id)
        req = threadfix.build_upload(
            self.base_url,
            app,
            FilePart("file", name, content),
            api_version=self.api_version,
            source=self.name,
        )
        return await self._call(
            req,
            lambda r: threadfix.parse_upload(
                r, source=self.name, base_url=self.base_url, application_id=app
            ),
        )

    async def pending_scan(self, application_id: str | int, pending_scan_id: str | int) -> Scan:
        """The state of a queued scan."""
        app, pid = str(application_id), str(pending_scan_id)
        return await self._call(
            threadfix.build_pending_scan(self.base_url, app, pid, api_version=self.api_version),
            lambda r: threadfix.parse_pending_scan(
                r, source=self.name, application_id=app, pending_scan_id=pid
            ),
        )

    async def refresh(self, item: Scan) -> Scan:
        """Poll a pending scan this client uploaded or fetched."""
        self._check_mine(item)
        return await self.pending_scan(item.application_id, item.id)


class AppSecPlus(Client):
    """AppSec+ (SAST / DAST / SCA / container scans)."""

    vendor = Vendor.APPSECPLUS

    def __init__(self, base_url: str, token: str | Secret, **kw: Any) -> None:
        self._token = Secret(token)
        super().__init__(
            base_url,
            auth_headers=appsecplus.auth_headers(self._token.reveal()),
            secrets=(self._token,),
            **kw,
        )

    async def scans(
        self, application_id: str | None = None, status: str | None = None
    ) -> list[Scan]:
        """Scans, optionally of one application and/or in one status."""
        req = appsecplus.build_list(self.base_url, application_id=application_id, status=status)
        return await self._call(
            req, lambda r: appsecplus.parse_list(r, source=self.name, base_url=self.base_url)
        )

    async def trigger_scan(
        self, application_id: str, scan_type: str, triggered_by: str | None = None
    ) -> Scan:
        """Queue a scan (`scan_type` is sast, dast, sca or container)."""
        req = appsecplus.build_trigger(
            self.base_url, application_id, scan_type, triggered_by, source=self.name
        )
        return await self._call(
            req, lambda r: appsecplus.parse_scan(r, source=self.name, base_url=self.base_url)
        )

    async def scan(self, scan_id: str) -> Scan:
        """One scan by id."""
        return await self._call(
            appsecplus.build_get(self.base_url, scan_id),
            lambda r: appsecplus.parse_scan(r, source=self.name, base_url=self.base_url),
        )

    async def refresh(self, item: Scan) -> Scan:
        """Poll a scan."""
        self._check_mine(item)
        return await self.scan(item.id)


class AppTrust(Client):
    """JFrog AppTrust (application version promotions with entry/exit gates)."""

    vendor = Vendor.APPTRUST

    def __init__(self, base_url: str, token: str | Secret, **kw: Any) -> None:
        self._token = Secret(token)
        super().__init__(
            base_url,
            auth_headers=apptrust.auth_headers(self._token.reveal()),
            secrets=(self._token,),
            **kw,
        )

    async def promotions(
        self,
        application_key: str,
        version: str,
        *,
        target_stage: str | None = None,
        status: str | None = None,
        promoted_by: str | None = None,
        order_by: str = "created",
        ascending: bool = False,
        page_size: int = 100,
    ) -> AsyncIterator[Promotion]:
        """Every promotion of a version, fetched page by page as the iteration goes."""
        filters = apptrust.Filters(target_stage, status, promoted_by)
        offset: int | None = 0
        while offset is not None:
            req = apptrust.build_promotions(
                self.base_url,
                application_key,
                version,
                offset=offset,
                limit=page_size,
                filters=filters,
                order_by=order_by,
                ascending=ascending,
            )
            parse = functools.partial(
                apptrust.parse_promotions,
                source=self.name,
                application_key=application_key,
                version=version,
                offset=offset,
                filters=filters,
            )
            page = await self._call(req, parse)
            for promo in page.promotions:
                yield promo
            offset = page.next_offset()

    async def promotion(self, application_key: str, version: str, promotion_id: str) -> Promotion:
        """One promotion by its id (`created_millis`)."""
        return await self._call(
            apptrust.build_promotion(self.base_url, application_key, version, promotion_id),
            lambda r: apptrust.parse_promotion(
                r, source=self.name, application_key=application_key, version=version
            ),
        )

    async def promote(
        self,
        application_key: str,
        version: str,
        target_stage: str,
        *,
        promotion_type: str | None = None,
        included_repository_keys: list[str] | None = None,
        excluded_repository_keys: list[str] | None = None,
        run_async: bool = True,
    ) -> Promotion:
        """Promote a version to `target_stage`; returns the promotion as the server answered."""
        req = apptrust.build_promote(
            self.base_url,
            application_key,
            version,
            target_stage,
            promotion_type=promotion_type,
            included_repository_keys=included_repository_keys,
            excluded_repository_keys=excluded_repository_keys,
            run_async=run_async,
            source=self.name,
        )
        return await self._call(
            req,
            lambda r: apptrust.parse_promote(
                r,
                source=self.name,
                application_key=application_key,
                version=version,
                target_stage=target_stage,
            ),
        )

    async def refresh(self, item: Promotion) -> Promotion:
        """Poll a promotion's details."""
        self._check_mine(item)
        return await self.promotion(item.application_id, item.version or "", item.id)
