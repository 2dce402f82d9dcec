"""Registry answers -> ingot errors, in one place.

A registry explains failures in a JSON body (`{"errors": [{"code", "message"}]}`,
distribution spec section "Error Codes"); that text is kept in the message.
"""

from __future__ import annotations

import requests

from ingot.registry.oci.errors import (
    RegistryAuthError,
    RegistryConnectionError,
    RegistryError,
    RegistryNotFoundError,
    RegistryProtocolError,
)

__all__ = ["raise_for_status", "registry_codes", "registry_message"]


def _errors(response: requests.Response) -> list[dict[str, object]]:
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    return [err for err in body.get("errors") or [] if isinstance(err, dict)]


def registry_codes(response: requests.Response) -> set[str]:
    """The error codes (`BLOB_UNKNOWN`, `DENIED`, ...) in a registry's answer."""
    return {str(err.get("code")) for err in _errors(response) if err.get("code")}


def registry_message(response: requests.Response) -> str:
    """`": message; message"` from the registry's error body, or "" when it sent none."""
    messages = [str(err["message"]) for err in _errors(response) if err.get("message")]
    return f": {'; '.join(messages)}" if messages else ""


def raise_for_status(response: requests.Response, *, host: str, what: str, expected: tuple[int, ...]) -> None:
    """Raise the ingot error for an answer whose status is not in `expected`."""
    status = response.status_code
    if status in expected:
        return
    detail = registry_message(response)
    if status == 404:
        raise RegistryNotFoundError(f"{what}: not found on {host}{detail}",
                                    hint="check the name and tag (`ingot pull host/namespace/name:tag`)")
    if status in (401, 403):
        raise RegistryAuthError(f"{what}: {host} denied access (HTTP {status}){detail}",
                                hint=f"run `ingot login {host}`, and check the account's permissions")
    if status == 429 or status >= 500:
        raise RegistryConnectionError(f"{what}: {host} kept failing with HTTP {status}{detail}",
                                      hint="the registry is overloaded or down; try again later")
    if 400 <= status < 500:
        raise RegistryError(f"{what}: {host} refused the request (HTTP {status}){detail}")
    raise RegistryProtocolError(f"{what}: unexpected HTTP {status} from {host}{detail}")
