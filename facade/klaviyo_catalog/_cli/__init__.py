"""The `klaviyo-catalog` command: argument parsing, dispatch, and errors as exit codes.

Every failure ends as one line on stderr that names the problem and the fix, and an exit
status scripts can test: 0 ok, 1 API error, 2 usage error, 3 `jobs wait` timed out. What a
server sent is escaped wherever it is shown (`_text`): on stdout, in that line, in -v's log.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .._client import BASE_URL_VARIABLE, CatalogJobs
from .._operations import REVISION
from .._revisions import KlaviyoDeprecationWarning, Revision
from .._text import escape
from .._version import __version__
from ..errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InvalidRequestError,
    InvalidResponseError,
    KlaviyoError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TransportError,
    WaitTimeoutError,
)
from ._jobs import GET_KINDS, LIST_KINDS, get_job, job_errors, list_jobs
from ._reach import unreachable
from ._waiting import WAIT_KINDS, WATCH_KINDS, wait_jobs, watch_jobs

__all__ = ["CliError", "main"]

OK, API_ERROR, USAGE, TIMEOUT, INTERRUPTED = 0, 1, 2, 3, 130
KEY_VARIABLE = "KLAVIYO_API_KEY"
TOKEN_VARIABLE = "KLAVIYO_ACCESS_TOKEN"  # an OAuth app's, instead of a key
# What to do about each API error; the library's message already says what happened.
HINTS: tuple[tuple[type[KlaviyoError], str], ...] = (
    (
        AuthenticationError,
        f"check that {KEY_VARIABLE} holds a valid private API key "
        f"(or {TOKEN_VARIABLE} a current access token)",
    ),
    (PermissionDeniedError, "the key needs the catalogs:read scope"),
    (NotFoundError, "check the job id, and that KIND is the job's kind"),
    (BadRequestError, "check the arguments (see --help)"),
    (RateLimitError, "the account is over its rate limit: try again in a minute"),
    (ServerError, "Klaviyo is failing: try again later"),
    # Before InvalidResponseError, its base: the pages read were printed in full.
    (PaginationError, "the jobs of every page read were listed; run it again later for the rest"),
    (InvalidResponseError, "check that --base-url points at Klaviyo's API"),
)
EPILOG = f"""\
environment:
  {KEY_VARIABLE}   a private API key with the catalogs:read scope (required;
                    it is never taken as an option, so it stays out of shell history)
  {TOKEN_VARIABLE}  instead of the key, an OAuth app's access token
  {BASE_URL_VARIABLE}  the default for --base-url

exit status: 0 ok, 1 API error, 2 usage error, 3 `jobs wait` timed out, 130 Ctrl-C

output: what the server sent is shown as sent, except that control, bidi-override and
  invisible characters (and lone surrogates) are shown as escapes (\\x1b, \\u202e); --json is
  strict JSON, the same characters as \\uXXXX escapes, and NaN or Infinity (not JSON) as null;
  --csv puts ' before a cell that would start a formula (= + - @).

start with `klaviyo-catalog fake-server` to try it all without an account."""


class CliError(Exception):
    """A failure the CLI itself detects; the message names the fix."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other error, instead of argparse's usage block; it names the
        # help of the (sub)command that refused the arguments.
        self.exit(USAGE, f"error: {escape(message)}: see `{self.prog} --help`\n")


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
        return value

    return parse


def _seconds(parser: argparse.ArgumentParser, flag: str, default: float, help: str) -> None:
    """Add an option taking a positive number of seconds, shown as S in --help."""
    parser.add_argument(flag, metavar="S", type=_positive(float), default=default, help=help)


def _revision(text: str) -> str:
    try:
        return str(Revision.parse(text))
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="klaviyo-catalog",
        description="Inspect Klaviyo catalog bulk jobs: list, get, wait for or watch them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # The global options are accepted after the subcommand too (`jobs get KIND ID -v`);
    # SUPPRESS keeps a value given before it from being reset by the subcommand's default.
    verbose = _Parser(add_help=False)
    for target, later in ((parser, False), (verbose, True)):
        target.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS if later else False,
            help="log each request, retry and rate-limit wait on stderr (never the key)",
        )
    client = _Parser(add_help=False, parents=[verbose])
    for target, default in ((parser, None), (client, argparse.SUPPRESS)):
        target.add_argument(
            "--base-url",
            default=default,
            help=f"API root (default: ${BASE_URL_VARIABLE}, else https://a.klaviyo.com)",
        )
        target.add_argument(
            "--revision",
            default=default,
            type=_revision,
            help=f"API revision to send, YYYY-MM-DD (default: {REVISION})",
        )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    jobs = commands.add_parser(
        "jobs", parents=[verbose], help="list, get, wait for or watch bulk jobs"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = jobs.add_parser(
        "list", parents=[client], help="list jobs, fetching pages only as needed"
    )
    listing.add_argument("kind", metavar="KIND", choices=LIST_KINDS, help=" or ".join(LIST_KINDS))
    listing.add_argument("--status", help="only jobs with this status, e.g. processing")
    listing.add_argument("--limit", metavar="N", type=_positive(int), help="stop after N jobs")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=list_jobs)

    get = jobs.add_parser("get", parents=[client], help="get one job")
    get.add_argument("kind", metavar="KIND", choices=GET_KINDS, help=", ".join(GET_KINDS))
    get.add_argument("job_id", metavar="JOB_ID")
    get.add_argument(
        "--include", action="store_true", help="include its items, variants or categories"
    )
    get.add_argument("--json", action="store_true", help="print the job as one JSON document")
    get.set_defaults(run=get_job)

    errors = jobs.add_parser(
        "errors", parents=[client], help="a job's failures, each with the resource it concerns"
    )
    errors.add_argument("kind", metavar="KIND", choices=GET_KINDS, help=", ".join(GET_KINDS))
    errors.add_argument("job_id", metavar="JOB_ID")
    output = errors.add_mutually_exclusive_group()
    output.add_argument(
        "--csv", action="store_true", help="CSV with a header row, for a spreadsheet"
    )
    output.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per failure, a line each: {"error": {...}, "resource": {...} or '
        "null}, the library's JobFailure.to_dict(); nothing for a job without errors",
    )
    errors.set_defaults(run=job_errors)

    wait = jobs.add_parser(
        "wait", parents=[client], help="wait for one or many jobs of a kind until they are done"
    )
    wait.add_argument("kind", metavar="KIND", choices=WAIT_KINDS, help=", ".join(WAIT_KINDS))
    wait.add_argument("job_ids", metavar="JOB_ID", nargs="+")
    _seconds(wait, "--timeout", 600.0, "give up after S seconds (600)")
    _seconds(
        wait,
        "--poll-interval",
        2.0,
        "seconds between polls (2; longer when the rate limits need it)",
    )
    wait.add_argument(
        "--json", action="store_true", help="one JSON line per poll and per finished job"
    )
    wait.set_defaults(run=wait_jobs)

    watch = jobs.add_parser(
        "watch",
        parents=[client],
        help=f"show every running job ({', '.join(WATCH_KINDS)}), live, until Ctrl-C",
    )
    _seconds(watch, "--interval", 5.0, "seconds between polls (5)")
    watch.add_argument("--count", metavar="N", type=_positive(int), help="stop after N polls")
    watch.add_argument(
        "--json", action="store_true", help="JSON lines even on a terminal (the default in a pipe)"
    )
    watch.set_defaults(run=watch_jobs)

    fake = commands.add_parser(
        "fake-server", help="run a fake Klaviyo with sample jobs, for trying things out"
    )
    fake.add_argument("--port", type=_port, default=0, help="port on 127.0.0.1 (0: any free one)")
    fake.add_argument(
        "--spec",
        metavar="PATH",
        help="a curated spec (JSON) to serve the shape of (default: the generated revision's)",
    )
    fake.add_argument(
        "--ready-file", help="write {base_url, api_key, examples} as JSON here once listening"
    )
    fake.add_argument(
        "--finish-within",
        metavar="S",
        type=_positive(float),
        help="each running job of the backlog finishes within S seconds of the first time a "
        "client lists or gets it (default: they stay running)",
    )
    # An argument no parser took is refused by the command it was given to: its --help has
    # the options that command takes.
    for command in (listing, get, errors, wait, watch, fake):
        command.set_defaults(command_parser=command)
    return parser


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments, or SystemExit after a usage error (one line on stderr), --help or
    --version."""
    parser = build_parser()
    args, unrecognized = parser.parse_known_args(argv)
    if unrecognized:
        refusing: argparse.ArgumentParser = getattr(args, "command_parser", parser)
        refusing.error(f"unrecognized arguments: {' '.join(unrecognized)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else USAGE
    key = os.environ.get(KEY_VARIABLE, "").strip()
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    secrets = [s for s in (key, token) if s]
    if args.verbose:
        _log_to_stderr()
    try:
        return _run(args, key, token)
    except CliError as exc:
        return _fail(exc.code, str(exc), secrets)
    except WaitTimeoutError as exc:
        message = f"{exc}: wait longer with --timeout, or run `jobs wait` again"
        return _fail(TIMEOUT, message, secrets)
    except (ConfigurationError, InvalidRequestError) as exc:
        return _fail(USAGE, str(exc), secrets)
    except KlaviyoError as exc:
        hint = next((text for cls, text in HINTS if isinstance(exc, cls)), "")
        return _fail(API_ERROR, f"{exc}: {hint}" if hint else str(exc), secrets)
    except KeyboardInterrupt:
        return _fail(INTERRUPTED, "interrupted", secrets)
    except BrokenPipeError:
        # The reader (`| head`) has had enough; that is success, and must not print a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return OK


class _EscapingFormatter(logging.Formatter):
    """Log lines with any control or bidi character escaped, one record a line: the library
    escapes what a server sent in its log calls' arguments; this holds for any other record."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(super().formatMessage(record))


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_EscapingFormatter("%(asctime)s %(levelname)s %(message)s"))
    library = logging.getLogger("klaviyo_catalog")
    library.addHandler(handler)
    library.setLevel(logging.DEBUG)


def _run(args: argparse.Namespace, key: str, token: str) -> int:
    if args.command == "fake-server":
        from ._fake_server import serve  # the fake is only loaded for this command

        return serve(args.port, args.spec, args.ready_file, args.finish_within)
    if key and token:
        raise CliError(f"both {KEY_VARIABLE} and {TOKEN_VARIABLE} are set: unset one of them")
    if not (key or token):
        raise CliError(
            f"no API key: set {KEY_VARIABLE} to a private key with the catalogs:read scope, "
            f"or {TOKEN_VARIABLE} to an OAuth app's access token "
            "(or run `klaviyo-catalog fake-server` for a local one)"
        )
    options: dict[str, Any] = {"base_url": args.base_url} if args.base_url else {}
    if token:
        options["access_token"] = token
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", KlaviyoDeprecationWarning)
        client = CatalogJobs(revision=args.revision, **options)
    if not args.verbose:  # with -v the library's own log line has said it already
        for warning in caught:  # once, on stderr, however Python's warning filters are set
            print(f"warning: {escape(str(warning.message))}", file=sys.stderr)
    with client:
        fix = f"check --base-url ({client.base_url}) and the network"
        reason = unreachable(client.base_url)
        if reason is not None:
            raise CliError(f"cannot reach {client.base_url}: {reason}: {fix}", code=API_ERROR)
        try:
            code: int = args.run(client, args, sys.stdout)
        except TransportError as exc:
            raise CliError(f"{exc}: {fix}", code=API_ERROR) from exc
        return code


def _fail(code: int, message: str, secrets: Sequence[str]) -> int:
    text = message
    for secret in secrets:
        text = text.replace(secret, "[redacted]")  # the library never quotes them; be sure
    # One line, whatever the message held: a server's CR/LF, ESC or bidi override, which error
    # details quote from a merchant's catalog, is shown as an escape.
    print(f"error: {escape(text)}", file=sys.stderr)
    return code
