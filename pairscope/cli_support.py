"""What every `pairscope` subcommand shares, so the command modules (cli.py, registry_cli.py,
review_cli.py) read alike: the help layout (summary, description, examples, defaults), the client
options, the exit statuses of client commands, and the two ways a read command answers (an
aligned table for people, `--json` for scripts)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pairscope.client import Client

Subparsers = argparse._SubParsersAction  # type: ignore[type-arg]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each option's default after its help, descriptions and examples printed as written. An
    unset default (None) or an off switch (False) is left out: the help says what happens."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def command(
    sub: Subparsers,
    name: str,
    summary: str,
    description: str,
    examples: str,
) -> argparse.ArgumentParser:
    """A subcommand with its one-line summary (in `pairscope -h`), a description and examples."""
    return sub.add_parser(
        name,
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}.\n\n{description.strip()}",
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples.strip().splitlines()),
        formatter_class=HelpFormatter,
    )


def command_group(
    sub: Subparsers, name: str, summary: str, description: str, examples: str
) -> Subparsers:
    """A command whose own subcommands are verbs (`pairscope institutions list`)."""
    group = command(sub, name, summary, description, examples)
    return group.add_subparsers(
        dest=f"{name}_command", required=True, metavar="COMMAND", help="what to do (COMMAND -h)"
    )


def client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", help="service URL (default $PAIRSCOPE_URL or http://127.0.0.1:8000)"
    )
    parser.add_argument("--key", help="API key (default $PAIRSCOPE_API_KEY)")


Option = tuple[tuple[str, ...], dict[str, Any]]


def option(*flags: str, **settings: Any) -> Option:
    """One `add_argument` call written down as data, so a command's options can be a list."""
    return flags, settings


PAIRING = option("--pairing", type=int, required=True, metavar="ID", help="the pairing's id")


def add_options(parser: argparse.ArgumentParser, options: Sequence[Option]) -> None:
    for flags, settings in options:
        parser.add_argument(*flags, **settings)


def pairing_option(parser: argparse.ArgumentParser) -> None:
    add_options(parser, [PAIRING])


def json_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def client_command(
    sub: Subparsers,
    name: str,
    summary: str,
    description: str,
    examples: str,
    func: Callable[[argparse.Namespace], int],
    options: Sequence[Option] = (),
    json: str | None = None,
) -> argparse.ArgumentParser:
    """A command that talks to the service, declared in one call: its own options in order,
    then --json where `json` names what it prints, then --url and --key."""
    parser = command(sub, name, summary, description, examples)
    add_options(parser, options)
    if json is not None:
        json_option(parser, json)
    client_options(parser)
    parser.set_defaults(func=func)
    return parser


def fail(message: object, code: int) -> int:
    """One line on stderr, and the exit status to return."""
    print(f"error: {message}", file=sys.stderr)
    return code


def run_client(run: Callable[[], object]) -> int:
    """Run a client command with the exit statuses every client command shares: a refused or
    wrong request (a usage error) is one line on stderr and exit 2; a service that cannot be
    reached or fails is one line and exit 1; Ctrl-C outside of following a job exits 130; never
    a traceback for any of them. An int result is the exit status; anything else (what the
    command printed about) means success."""
    from pairscope.client import ClientError

    try:
        result = run()
        return result if isinstance(result, int) and not isinstance(result, bool) else 0
    except ClientError as exc:
        return fail(exc, exc.exit_code)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        # a path given on the command line
        return fail(f"{exc.filename}: {exc.strerror}" if exc.filename else exc, 2)
    except OSError as exc:
        return fail(exc, 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def make_client(args: argparse.Namespace) -> Client:
    from pairscope.client import Client

    return Client(args.url, args.key)


def print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def to_stderr(text: str) -> None:
    """Where messages go while stdout is kept for --json."""
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- tables


def when(timestamp: str | None) -> str:
    """An API timestamp as minutes, for a table; '-' when there is none."""
    if not timestamp:
        return "-"
    return datetime.fromisoformat(timestamp).strftime("%Y-%m-%d %H:%M")


def short(text: object, width: int = 60) -> str:
    """A cell no wider than `width`: long reasons are cut with an ellipsis (--json has all)."""
    value = "-" if text is None or text == "" else str(text)
    return value if len(value) <= width else value[: width - 1] + "…"


def table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns aligned on the widest cell, two spaces apart, no trailing blanks."""
    cells = [list(head)] + [[short(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def fields(pairs: Sequence[tuple[str, object]]) -> str:
    """One object as `name: value` lines, the names aligned."""
    width = max(len(name) for name, _ in pairs)
    return "\n".join(f"{name + ':':<{width + 1}} {short(value, 100)}" for name, value in pairs)


def answer(
    args: argparse.Namespace, value: Any, render: Callable[[Any], str], empty: str | None = None
) -> None:
    """Print what a read command found: JSON with --json, otherwise `render(value)` (or
    `empty` for an empty list, so a person is not left with a bare header)."""
    if getattr(args, "json", False):
        print_json(value)
    elif empty is not None and not value:
        print(empty)
    else:
        print(render(value))


def show_one(
    args: argparse.Namespace, path: str, render: Callable[[Any], str], empty: str | None = None
) -> int:
    """A `show` command: GET one object (or one unpaged list) and `answer` with it."""
    return run_client(lambda: answer(args, make_client(args).get(path), render, empty))


def show_all(
    args: argparse.Namespace,
    path: str,
    render: Callable[[Any], str],
    empty: str,
    **params: object,
) -> int:
    """A `list` command: every page of `path` (filters left unset are not sent), then `answer`."""
    wanted = {name: value for name, value in params.items() if value is not None}
    return run_client(
        lambda: answer(args, make_client(args).all_pages(path, **wanted), render, empty)
    )


def reply(args: argparse.Namespace, value: object, line: str) -> None:
    """A write command's answer: what the service returned as JSON with --json, else one line."""
    if args.json:
        print_json(value)
    else:
        print(line)
