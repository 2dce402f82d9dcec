"""One registry host over the OCI distribution API: authenticated, retried requests.

Built on oras-py's `Registry`, which owns the requests session (cookies off,
TLS settings) and the token endpoint call; this module adds what a robust
client needs on top: default timeouts on every request, a pool sized for
parallel transfers, one-shot challenge answers (auth.py), retries with
backoff for 429/5xx/dropped connections honouring `Retry-After` (retry.py),
and the OCI manifest media types in every manifest `Accept`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urljoin

import oras.provider
import requests
import requests.adapters
import urllib3.exceptions

from ingot.registry import mediatypes
from ingot.registry.oci.auth import ChallengeAuth
from ingot.registry.oci.credentials import Credentials, load_credentials
from ingot.registry.oci.errors import RegistryConnectionError
from ingot.registry.oci.options import ClientOptions, Timeouts
from ingot.registry.oci.responses import raise_for_status
from ingot.registry.oci.retry import RETRY_STATUSES, Backoff, is_retryable_exception

__all__ = ["MANIFEST_ACCEPT", "RegistryClient", "RewindableBody", "endpoint_host"]


# Every manifest kind a model package may be stored as; distribution 2.8
# answers 404 to a manifest GET whose Accept lacks the stored type.
MANIFEST_ACCEPT = ", ".join(
    (
        mediatypes.OCI_MANIFEST,
        mediatypes.DOCKER_MANIFEST,
        mediatypes.OCI_INDEX,
        mediatypes.DOCKER_MANIFEST_LIST,
    )
)

# Docker Hub's API does not live at its name.
_ENDPOINT_ALIASES = {"docker.io": "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}


def endpoint_host(host: str) -> str:
    """The host serving the `/v2/` API for a registry name."""
    return _ENDPOINT_ALIASES.get(host, host)


class RewindableBody(Protocol):
    """A request body that can be sent again after an auth challenge."""

    def rewind(self) -> None: ...


class _TimeoutAdapter(requests.adapters.HTTPAdapter):
    """Puts the configured timeouts on every request, including the ones oras makes itself."""

    def __init__(self, timeouts: Timeouts, pool_size: int) -> None:
        self._timeouts = (timeouts.connect, timeouts.read)
        super().__init__(pool_connections=2, pool_maxsize=pool_size, max_retries=0)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeouts
        return super().send(request, **kwargs)


class RegistryClient:
    """Requests against one registry host; thread safe, use one per transfer and `close()` it."""

    def __init__(
        self,
        host: str,
        *,
        options: ClientOptions | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        self.host = host
        self.options = options or ClientOptions()
        self.verify = self.options.tls_verify()
        self._scheme = self.options.scheme_for(host)
        self._scheme_lock = threading.Lock()
        self._oras = oras.provider.Registry(
            hostname=host, insecure=self._scheme == "http", tls_verify=self.verify, auth_backend="token"
        )
        self.session: requests.Session = self._oras.session
        adapter = _TimeoutAdapter(self.options.timeouts, pool_size=self.options.parallel + 4)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "ingot (oras-py)"
        config_path = self.options.docker_config
        if credentials is not None:
            source: Callable[[], Credentials | None] = lambda: credentials  # noqa: E731
        else:
            source = lambda: load_credentials(host, config_path=config_path)  # noqa: E731
        self.auth = ChallengeAuth(self._oras, host, source, verify=self.verify)
        self._reached = False

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    @property
    def scheme(self) -> str:
        """`http` or `https`; for --insecure, the first use asks the host whether it speaks TLS."""
        with self._scheme_lock:
            if self._scheme == "probe":
                self._scheme = self._probe_scheme()
                self._oras.prefix = self._oras.auth.prefix = self._scheme
            return self._scheme

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{endpoint_host(self.host)}/v2/"

    def _probe_scheme(self) -> str:
        try:
            self.session.get(f"https://{endpoint_host(self.host)}/v2/", verify=False).close()
        except requests.exceptions.SSLError:
            return "http"  # the port answers, but not with TLS
        except requests.RequestException:
            return "http"  # nothing answers TLS there; plain HTTP gets its own clear error if it fails too
        return "https"

    def url(self, path: str) -> str:
        """An absolute URL for an API path (`name/blobs/...`) or a registry-sent `Location`."""
        if path.startswith(("http://", "https://")):
            return path
        if path.startswith("/"):
            return urljoin(self.base_url, path)
        return self.base_url + path

    def backoff(self, what: str) -> Backoff:
        return Backoff(self.options.retry, what)

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        what: str,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
        retry: bool = True,
        allow_redirects: bool = True,
    ) -> requests.Response:
        """Send one request with auth; retry 408/429/5xx and dropped connections when `retry`.

        A final 429/5xx is returned, not raised: callers map statuses with
        `expect()`. Connection failures that outlive the retries raise
        `RegistryConnectionError`; with `retry=False` the requests exception
        itself propagates, for callers that resume a transfer their own way.
        """
        backoff = self.backoff(what)
        while True:
            try:
                response = self._send_authenticated(
                    method, path, scope=scope, headers=headers, data=data, params=params,
                    stream=stream, allow_redirects=allow_redirects,
                )
            except requests.exceptions.SSLError as exc:
                raise self._tls_error(exc) from None
            except Exception as exc:  # noqa: BLE001 - classified right below
                if not is_retryable_exception(exc) or not retry:
                    raise  # without `retry` the caller resumes the transfer itself
                if backoff.exhausted() or (not self._reached and _never_connected(exc)):
                    # A host that never answered is most likely a wrong name or port: say so at once.
                    raise self.connection_error(what, exc) from None
                backoff.wait(f"{type(exc).__name__}")
                continue
            self._reached = True
            if retry and response.status_code in RETRY_STATUSES and not backoff.exhausted():
                response.close()
                backoff.wait(f"HTTP {response.status_code}", response)
                continue
            return response

    def expect(self, response: requests.Response, *, what: str, expected: tuple[int, ...]) -> requests.Response:
        """Return `response` if its status is expected, else raise the matching ingot error."""
        if response.status_code not in expected:
            try:
                raise_for_status(response, host=self.host, what=what, expected=expected)
            finally:
                response.close()
        return response

    def connection_error(self, what: str, exc: BaseException) -> RegistryConnectionError:
        return RegistryConnectionError(
            f"{what}: cannot reach {self.host} over {self.scheme} ({type(exc).__name__}: {_short(exc)})",
            hint="check the host and port; a registry without TLS needs --insecure",
        )

    def _tls_error(self, exc: BaseException) -> RegistryConnectionError:
        return RegistryConnectionError(
            f"TLS with {self.host} failed: {_short(exc)}",
            hint="for a private CA pass --ca-cert FILE; for a registry without valid TLS, --insecure",
        )

    def _send_authenticated(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None,
        data: Any,
        params: Mapping[str, str] | None,
        stream: bool,
        allow_redirects: bool,
    ) -> requests.Response:
        url = self.url(path)
        merged = dict(headers or {})
        merged.update(self.auth.headers(scope))
        response = self._send(method, url, merged, data, params, stream, allow_redirects)
        if response.status_code != 401:
            return response
        self.auth.answer(response, scope)
        response.close()
        if hasattr(data, "rewind"):
            data.rewind()
        merged = dict(headers or {})
        merged.update(self.auth.headers(scope))
        response = self._send(method, url, merged, data, params, stream, allow_redirects)
        if response.status_code == 401:
            error = self.auth.refused(response)
            response.close()
            raise error
        return response

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: Any,
        params: Mapping[str, str] | None,
        stream: bool,
        allow_redirects: bool,
    ) -> requests.Response:
        return self.session.request(
            method, url, headers=headers, data=data, params=params, stream=stream,
            verify=self.verify, allow_redirects=allow_redirects,
        )

    def ping(self) -> None:
        """`GET /v2/` with credentials: proves the registry is there and (if it asks) accepts us."""
        response = self.request("GET", "", scope="", what=f"checking {self.host}")
        self.expect(response, what=f"checking {self.host}", expected=(200,))
        response.close()


def _never_connected(exc: BaseException) -> bool:
    """Whether the TCP connection itself failed (refused, no route, unknown host): no byte was exchanged."""
    if not isinstance(exc, requests.ConnectionError) or isinstance(exc, requests.ConnectTimeout):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
