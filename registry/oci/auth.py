"""Answering a registry's `WWW-Authenticate` challenge: Basic, or Bearer tokens per scope.

oras-py's `token` backend retries a failed challenge inside a decorator that
sleeps between tries, which against a Basic-auth registry turns a wrong
password into a two-minute hang. Here a challenge is answered exactly once:
Basic sends the stored credentials, Bearer fetches a token through oras'
`TokenAuth.request_token` (credentials as Basic) or, for an identity token,
the OAuth2 refresh-token grant. If the answer is refused, the caller gets one
`RegistryAuthError` at once.

Credentials are looked up lazily, on the first challenge, so anonymous
registries never touch a credential helper.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import oras.auth.utils as oras_auth_utils
import oras.provider
import requests

from ingot.registry.oci.credentials import Credentials
from ingot.registry.oci.errors import RegistryAuthError, RegistryProtocolError
from ingot.registry.oci.responses import registry_message

__all__ = ["ChallengeAuth", "pull_scope", "push_scope"]


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


class ChallengeAuth:
    """The `Authorization` state of one registry host, shared by every thread of a transfer."""

    def __init__(
        self,
        registry: oras.provider.Registry,
        host: str,
        credentials: Callable[[], Credentials | None],
        *,
        verify: bool | str,
    ) -> None:
        self._registry = registry
        self._verify = verify
        self._host = host
        self._load_credentials = credentials
        self._credentials: Credentials | None = None
        self._loaded = False
        self._scheme: str | None = None
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def headers(self, scope: str) -> dict[str, str]:
        """The `Authorization` header to send unasked, once a challenge told us the scheme."""
        with self._lock:
            if self._scheme == "basic" and self._credentials is not None:
                return {"Authorization": f"Basic {self._credentials.basic_token()}"}
            token = self._tokens.get(scope)
            return {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def credentials_used(self) -> bool:
        """Whether the registry asked for authentication and was answered with credentials."""
        with self._lock:
            return self._scheme is not None and self._credentials is not None

    def credentials(self) -> Credentials | None:
        with self._lock:
            return self._credentials_locked()

    def _credentials_locked(self) -> Credentials | None:
        if not self._loaded:
            self._credentials = self._load_credentials()
            self._loaded = True
            if self._credentials is not None and self._credentials.has_basic:
                self._registry.auth.set_basic_auth(self._credentials.username, self._credentials.password)
        return self._credentials

    def answer(self, response: requests.Response, scope: str) -> None:
        """Prepare credentials for `scope` from a 401's challenge; raise when there is nothing to answer with."""
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].strip().lower()
        with self._lock:
            creds = self._credentials_locked()
            if scheme == "basic":
                if creds is None or not creds.has_basic:
                    raise self._login_needed()
                self._scheme = "basic"
                return
            if scheme == "bearer":
                self._scheme = "bearer"
                self._tokens.pop(scope, None)
                self._tokens[scope] = self._fetch_token(challenge, scope, creds)
                return
        raise RegistryProtocolError(
            f"{self._host} asked for authentication with an unsupported scheme {scheme or '(none)'!r}",
            hint="ingot speaks Basic and Bearer token authentication",
        )

    def refused(self, response: requests.Response) -> RegistryAuthError:
        """The error for a request still refused after its challenge was answered."""
        creds = self.credentials()
        if response.status_code == 403:
            who = f" for user {creds.username!r}" if creds and creds.username else ""
            return RegistryAuthError(
                f"{self._host} denied access{who} (HTTP 403){registry_message(response)}",
                hint="check that the account may read (pull) or write (push) this repository",
            )
        if creds is None:
            return self._login_needed()
        who = f"user {creds.username!r}" if creds.username else "the stored identity token"
        return RegistryAuthError(
            f"{self._host} rejected the credentials of {who}{registry_message(response)}",
            hint=f"run `ingot login {self._host}` with the right password",
        )

    def _login_needed(self) -> RegistryAuthError:
        return RegistryAuthError(
            f"{self._host} requires authentication and no credentials are stored for it",
            hint=f"run `ingot login {self._host}` (or `docker login {self._host}`) first",
        )

    def _fetch_token(self, challenge: str, scope: str, creds: Credentials | None) -> str:
        params = oras_auth_utils.parse_auth_header(challenge)
        if not params.realm:
            raise RegistryProtocolError(f"{self._host} sent a Bearer challenge without a realm: {challenge!r}")
        if not params.scope:
            params.scope = scope
        if creds is not None and creds.identity_token:
            token = self._refresh_token_grant(params, creds)
        else:
            try:
                token = self._registry.auth.request_token(params)
            except (requests.RequestException, ValueError) as exc:
                raise RegistryAuthError(
                    f"the token service {params.realm} of {self._host} failed: {type(exc).__name__}",
                    hint="check the registry's auth service, or --insecure/--ca-cert for its TLS",
                ) from None
        if not token:
            if creds is None:
                raise self._login_needed()
            raise RegistryAuthError(
                f"the token service {params.realm} of {self._host} rejected the credentials "
                f"of user {creds.username!r}",
                hint=f"run `ingot login {self._host}` with the right password",
            )
        return str(token)

    def _refresh_token_grant(self, params: oras_auth_utils.authHeader, creds: Credentials) -> str | None:
        """Docker's identity tokens are OAuth2 refresh tokens: trade one for an access token."""
        form = {
            "grant_type": "refresh_token",
            "refresh_token": creds.identity_token or "",
            "service": params.service or "",
            "scope": params.scope or "",
            "client_id": "ingot",
        }
        try:
            reply = self._registry.session.post(str(params.realm), data=form, verify=self._verify)
        except requests.RequestException as exc:
            raise RegistryAuthError(f"the token service {params.realm} failed: {type(exc).__name__}") from None
        if reply.status_code != 200:
            return None
        try:
            body = reply.json()
        except ValueError:
            return None
        return body.get("access_token") or body.get("token")

