"""``ldp-client``: the device runtime from the command line (standard library only).

    ldp-client [--url URL] [--key KEY] [--state-dir DIR] COMMAND ...

    report COLLECTION VALUE [--party P] [--flush]   perturb VALUE, queue the report (prints the receipt)
    flush [--collection ID] [--timeout S] [--json]  send queued reports
    budget COLLECTION [--json]                      spent / remaining epsilon, window and lifetime
    status [--json]                                 queue, delivery counters, last errors
    rejected [--collection ID] [--limit N] [--json] reports the server refused, with the reason

Defaults come from the environment: ``LDP_URL``, ``LDP_API_KEY`` (prefer it to ``--key``,
which shows in the process list) and ``LDP_STATE_DIR`` (else ``$XDG_STATE_HOME/ldp-client``
or ``~/.local/state/ldp-client``).

Exit codes: 0 done; 1 error (network, config, ...); 2 usage; 3 the device budget refuses
the report; 4 the flush left reports queued or met errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

EXIT_ERROR, EXIT_USAGE, EXIT_BUDGET, EXIT_INCOMPLETE = 1, 2, 3, 4


def default_state_dir() -> str:
    if os.environ.get("LDP_STATE_DIR"):
        return os.environ["LDP_STATE_DIR"]
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "ldp-client")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ldp-client",
        description="Report values with local differential privacy; the device keeps its own budget ledger.",
    )
    parser.add_argument("--url", default=os.environ.get("LDP_URL"), help="server base URL (env LDP_URL)")
    parser.add_argument("--key", default=None, help="client API key (default: env LDP_API_KEY)")
    parser.add_argument("--state-dir", default=None, help="device state directory (env LDP_STATE_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("report", help="perturb a value and queue the report")
    p.add_argument("collection")
    p.add_argument("value", help="an integer; multidim: 1,0,3 or [1,0,3]; heavy hitters: the item")
    p.add_argument("--party", default=None, help="heavy-hitter collections with parties: the party name")
    p.add_argument("--flush", action="store_true", help="flush right after queueing")
    p.add_argument("--timeout", type=float, default=30.0, help="flush timeout in seconds (with --flush)")

    p = sub.add_parser("flush", help="send queued reports")
    p.add_argument("--collection", default=None)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("budget", help="spent and remaining epsilon of one collection")
    p.add_argument("collection")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("status", help="queue and delivery state")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("rejected", help="reports the server refused for good, with the reason")
    p.add_argument("--collection", default=None)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    return parser


def coerce_value(cfg: Any, text: str) -> Any:
    """The VALUE argument as the collection's kind expects it."""
    kind = cfg.kind
    if kind == "heavy_hitters":
        domain = cfg.public.mechanism.get("domain", {})
        return int(text) if domain.get("type") == "integer" else text
    if kind == "multidim":
        raw = text.strip()
        parts = json.loads(raw) if raw.startswith("[") else raw.split(",")
        return tuple(int(p) for p in parts)
    return int(text)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def _budget_text(b: Any) -> str:
    lines = [
        f"collection {b.collection_id}: charged per {b.unit}, epsilon {b.unit_epsilon:g} each; "
        f"epoch {b.epoch}, accounting window {b.window_index}",
    ]
    for label, spend in (("lifetime", b.lifetime), (f"window {b.window_index}", b.window)):
        left = "-" if spend.remaining_units is None else str(spend.remaining_units)
        lines.append(
            f"  {label:<12} spent {_fmt(spend.spent)} / {_fmt(spend.cap)}   remaining {_fmt(spend.remaining)} "
            f"({left} charges)"
        )
    lines.append(
        f"  acknowledged by the server {b.acknowledged:g}, pending {b.pending:g}, refused by the server {b.rejected:g}"
    )
    lines.append(
        f"  reports {b.reports} (accepted {b.reports_accepted}, duplicates {b.reports_duplicate}, "
        f"rejected {b.reports_rejected}); memos {b.memo_count}"
    )
    return "\n".join(lines)


def _flush_text(r: Any) -> str:
    text = (
        f"accepted {r.accepted}, duplicates {r.duplicates}, rejected {r.rejected}, deferred {r.deferred}, "
        f"still queued {r.remaining} ({r.requests} requests)"
    )
    if r.reasons:
        text += "\nrejected by reason: " + ", ".join(f"{k}={v}" for k, v in sorted(r.reasons.items()))
    for err in r.errors:
        text += f"\nerror: {err}"
    return text


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from client_sdk.client import Client, ClientError
    from client_sdk.errors import BudgetExceededError, LDPError

    key = args.key or os.environ.get("LDP_API_KEY")
    state_dir = args.state_dir or default_state_dir()
    needs_server = args.command in ("report", "flush", "budget")
    if needs_server and not args.url:
        print("ldp-client: give --url or set LDP_URL", file=sys.stderr)
        return EXIT_USAGE
    try:
        with Client(args.url or "http://localhost", key, state_dir) as client:
            if args.command == "report":
                cfg = client.config(args.collection)
                try:
                    value = coerce_value(cfg, args.value)
                except (ValueError, TypeError) as exc:
                    print(f"ldp-client: bad value {args.value!r} for a {cfg.kind} collection: {exc}", file=sys.stderr)
                    return EXIT_USAGE
                receipt = client.report(args.collection, value, party=args.party)
                out: dict[str, Any] = dict(receipt.__dict__)
                if args.flush:
                    result = client.flush(timeout=args.timeout, collection_id=args.collection)
                    out["flush"] = result.to_dict()
                    _print_json(out)
                    return 0 if result.ok else EXIT_INCOMPLETE
                _print_json(out)
                return 0
            if args.command == "flush":
                result = client.flush(timeout=args.timeout, collection_id=args.collection)
                if args.json:
                    _print_json(result.to_dict())
                else:
                    print(_flush_text(result))
                return 0 if result.ok else EXIT_INCOMPLETE
            if args.command == "budget":
                b = client.budget(args.collection)
                if args.json:
                    _print_json(b.to_dict())
                else:
                    print(_budget_text(b))
                return 0
            if args.command == "status":
                st = client.status()
                if args.json:
                    _print_json(st)
                else:
                    print(f"client_id {st['client_id']}  state {st['state_dir']}  queued {st['queued']}")
                    for cid, c in sorted(st["collections"].items()):
                        reasons = c.get("rejected_by_reason") or {}
                        why = " (" + ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())) + ")" if reasons else ""
                        print(
                            f"  {cid}: queued {c.get('queued', 0)}, accepted {c.get('accepted', 0)}, "
                            f"duplicates {c.get('duplicates', 0)}, rejected {c.get('rejected', 0)}{why}, "
                            f"charges {c.get('units_charged', 0)}, memos {c.get('memo_count', 0)}"
                        )
                        if c.get("last_error"):
                            print(f"      last error: {c['last_error']}")
                return 0
            if args.command == "rejected":
                items = [r.to_dict() for r in client.rejected_reports(args.collection, args.limit)]
                if args.json:
                    _print_json(items)
                else:
                    for r in items:
                        where = f"{r['collection_id']}  {r['report_id']}  epoch {r['epoch']}"
                        print(f"{where}  {r['reason']}: {r['detail']}")
                    print(f"{len(items)} rejected report(s)")
                return 0
    except BudgetExceededError as exc:
        print(f"ldp-client: refused by the device budget: {exc}", file=sys.stderr)
        return EXIT_BUDGET
    except (ClientError, LDPError, ValueError, OSError) as exc:
        print(f"ldp-client: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_USAGE  # pragma: no cover - argparse requires a command


if __name__ == "__main__":
    sys.exit(main())
