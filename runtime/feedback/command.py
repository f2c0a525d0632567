"""`shadematch feedback --db PATH stats|export|purge`: look at, take out or delete what a kiosk's shoppers told it."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..cli_groups import QUERY_TIME, add_command
from ..cli_types import positive_float
from ..errors import ShadematchError
from .store import FeedbackStore, feedback_json


def register_feedback(commands: argparse._SubParsersAction) -> None:
    p = add_command(commands, "feedback", group=QUERY_TIME, summary="stats, export or purge a kiosk's feedback",
                    description="The feedback a kiosk started with --feedback-db keeps: shoppers' confirmed products "
                                "and \"not here\" answers, with their downscaled photos.")
    p.add_argument("--db", type=Path, required=True, help="the kiosk's feedback database (kiosk --feedback-db)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    stats = actions.add_parser("stats", help="counts, products covered, time span, bytes kept")
    stats.add_argument("--json", action="store_true", help="print JSON")
    export = actions.add_parser("export", help="every piece of feedback as feedback.jsonl + photos/ (with product "
                                "crops) in a new folder")
    export.add_argument("--out", type=Path, required=True, help="folder to create (must not exist)")
    purge = actions.add_parser("purge", help="delete feedback (all, or older than --older-than days)")
    purge.add_argument("--older-than", type=positive_float, default=None, metavar="DAYS", help="only feedback older than this (default: all feedback)")
    p.set_defaults(handler=_feedback)


def _feedback(args: argparse.Namespace) -> int:
    store = FeedbackStore(args.db, create=False)
    if args.action == "stats":
        stats = store.stats()
        if args.json:
            print(json.dumps(stats, indent=2))
        else:
            print(f"{stats['feedback']} answers with feedback: {stats['confirmed']} confirmed products "
                  f"({stats['products']} distinct), {stats['not_here']} 'not here'; {stats['photo_bytes'] / 2**20:.1f} MB "
                  f"of photos; from {stats['oldest'] or '-'} to {stats['newest'] or '-'}")
    elif args.action == "export":
        count = export_feedback(store, args.out)
        print(f"exported {count} answers with feedback to {args.out}")
    else:
        deleted = store.purge(args.older_than)
        print(f"deleted {deleted} answers with feedback from {args.db}")
    return 0


def export_feedback(store: FeedbackStore, out: Path) -> int:
    """``out``/feedback.jsonl (one row per line, its photo's path relative to ``out``) and ``out``/photos/*.jpg,
    written into a temporary sibling and renamed into place, so ``out`` is whole or absent."""
    if out.exists():
        raise ShadematchError(f"{out} already exists; export into a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (staged / "photos").mkdir()
        count = 0
        with open(staged / "feedback.jsonl", "w", encoding="utf-8") as lines:
            for row in store.rows():
                photo = f"photos/{row.query_id}.jpg"
                (staged / photo).write_bytes(row.photo)
                crop = f"photos/{row.query_id}.crop.jpg" if row.crop else None
                if crop:
                    (staged / crop).write_bytes(row.crop)
                lines.write(feedback_json(row, photo, crop) + "\n")
                count += 1
        os.replace(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return count
