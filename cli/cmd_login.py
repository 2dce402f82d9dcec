"""`ingot login HOST` / `ingot logout HOST`: store or forget registry credentials in Docker's config.json."""

from __future__ import annotations

import argparse
import getpass
import sys

from ingot.cli.output import user_errors
from ingot.cli.registry_args import add_connection_arguments, client_options

# ingot.registry.oci (oras, requests) is imported inside the functions that
# use it, so that building the parser for `ingot --help` stays cheap.

LOGIN_DESCRIPTION = """\
Check a username and password against HOST's /v2/ endpoint, then store them
where Docker keeps logins: the credential helper configured in
$DOCKER_CONFIG/config.json (credsStore / credHelpers) if there is one, else
the config.json itself (replaced atomically, mode 0600). `ingot push/pull`
and `docker` then use them.

Pass the password on standard input with --password-stdin (for scripts);
otherwise it is asked for without echo. It is never printed or logged.
"""

LOGOUT_DESCRIPTION = "Forget the credentials stored for HOST (config.json and its credential helper)."


def register(subparsers: argparse._SubParsersAction) -> None:
    login = subparsers.add_parser(
        "login", help="log in to an OCI registry", description=LOGIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    login.add_argument("host", metavar="HOST", help="the registry, e.g. registry.example.com or localhost:5000")
    login.add_argument("-u", "--username", metavar="USER", help="the account name (asked for when omitted)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add_connection_arguments(login, parallel=False)
    login.set_defaults(handler=run_login)

    logout = subparsers.add_parser("logout", help="forget the credentials of an OCI registry",
                                   description=LOGOUT_DESCRIPTION)
    logout.add_argument("host", metavar="HOST", help="the registry, e.g. registry.example.com")
    logout.set_defaults(handler=run_logout)


def normalize_host(raw: str) -> str:
    """`https://host:5000/` -> `host:5000`: what Docker's config is keyed by."""
    from ingot.registry.oci.errors import CredentialsError

    host = raw.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme):]
    host = host.split("/", 1)[0]
    if not host:
        raise CredentialsError(f"no registry host in {raw!r}", hint="write e.g. `ingot login registry.example.com`")
    return host.lower()


def _read_username(args: argparse.Namespace) -> str:
    from ingot.registry.oci.errors import CredentialsError

    if args.username:
        return str(args.username)
    if args.password_stdin or not sys.stdin.isatty():
        raise CredentialsError("no username given", hint="pass -u USER")
    name = input("Username: ").strip()
    if not name:
        raise CredentialsError("no username given", hint="pass -u USER")
    return name


def _read_password(args: argparse.Namespace) -> str:
    from ingot.registry.oci.errors import CredentialsError

    if args.password_stdin:
        password = sys.stdin.read()
        password = password[:-1] if password.endswith("\n") else password
        password = password[:-1] if password.endswith("\r") else password
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        raise CredentialsError("no password given and standard input is not a terminal",
                               hint="pipe it in with --password-stdin")
    if not password:
        raise CredentialsError("empty password", hint="pass the password on standard input with --password-stdin")
    return password


@user_errors()
def run_login(args: argparse.Namespace) -> int:
    from ingot.registry.oci import Credentials, RegistryClient, save_credentials

    host = normalize_host(args.host)
    options = client_options(args)
    username = _read_username(args)
    password = _read_password(args)
    credentials = Credentials(username=username, password=password)
    with RegistryClient(host, options=options, credentials=credentials) as client:
        client.ping()
        asked = client.auth.credentials_used
    where = save_credentials(host, username, password)
    note = "" if asked else " (the registry did not ask for credentials; they were stored unchecked)"
    print(f"Login Succeeded for {username} at {host}; stored in {where}{note}")
    return 0


@user_errors()
def run_logout(args: argparse.Namespace) -> int:
    from ingot.registry.oci import erase_credentials

    host = normalize_host(args.host)
    if erase_credentials(host):
        print(f"Removed the login for {host}")
    else:
        print(f"Not logged in to {host}")
    return 0
