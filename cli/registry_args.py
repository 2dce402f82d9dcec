"""Command-line options shared by `ingot push`, `pull` and `login`: how to reach a registry, how to show progress."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ingot.registry.transfer_defaults import DEFAULT_PARALLEL

if TYPE_CHECKING:
    from ingot.registry.oci import ClientOptions

__all__ = ["add_connection_arguments", "add_output_arguments", "client_options", "output_mode"]

CONNECTION_HELP = """\
Credentials come from Docker's config.json ($DOCKER_CONFIG, else
~/.docker/config.json), its credsStore and credHelpers: `ingot login` or
`docker login` store them. Registries on loopback (127.0.0.0/8, ::1,
localhost) are spoken to over plain HTTP; --insecure does the same for any
host and also skips TLS verification.
"""


def add_connection_arguments(parser: argparse.ArgumentParser, *, parallel: bool = True) -> None:
    parser.add_argument("--insecure", action="store_true",
                        help="plain HTTP and no TLS verification (private registries without valid TLS)")
    parser.add_argument("--ca-cert", metavar="FILE", type=Path, help="PEM bundle of a private CA to trust")
    if parallel:
        parser.add_argument("--parallel", metavar="N", type=int, default=DEFAULT_PARALLEL,
                            help=f"blobs transferred at once (default {DEFAULT_PARALLEL})")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="print only the final reference")
    group.add_argument("--json", action="store_true",
                       help="print progress as JSON lines ({status, digest, total, completed}), then the result")


def client_options(args: argparse.Namespace) -> ClientOptions:
    # Here, not at the top: ingot.registry.oci loads oras and requests, which `ingot --help` must not pay for.
    from ingot.registry.oci import ClientOptions
    from ingot.registry.oci.errors import CredentialsError

    ca_cert = getattr(args, "ca_cert", None)
    if ca_cert is not None and not ca_cert.is_file():
        raise CredentialsError(f"--ca-cert {ca_cert}: no such file", hint="pass a PEM file with the CA certificate")
    parallel = getattr(args, "parallel", DEFAULT_PARALLEL)
    if parallel < 1:
        raise CredentialsError(f"--parallel must be at least 1, not {parallel}")
    return ClientOptions(insecure=args.insecure, ca_cert=ca_cert, parallel=parallel)


def output_mode(args: argparse.Namespace) -> str:
    if getattr(args, "json", False):
        return "json"
    if getattr(args, "quiet", False):
        return "quiet"
    return "bars"
