"""`recviz datasets`, `recviz import` and `recviz inspect`: what data there is, saving an upload
under a name, and a dataset's size and make-up."""

from __future__ import annotations

import json

from recviz.commands.common import config_from_args, load_data
from recviz.config import run_option
from recviz.errors import RecvizError


def cmd_datasets(args) -> int:
    from recviz.data import catalog
    from recviz.data.load import saved_names

    rows = catalog.describe()
    saved = saved_names()
    if args.json:
        print(json.dumps({"catalog": rows, "saved": saved}, default=str))
        return 0
    print(f"{'name':22} {'kind':16} {'cached':7} description")
    for r in rows:
        print(f"{r['name']:22} {r['kind']:16} {'yes' if r['cached'] else 'no':7} {r['description']}")
    if saved:
        print("\nsaved uploads: " + ", ".join(saved))
    return 0


def parse_mapping(text: str | None) -> dict | None:
    """"user=userId,item=movieId" → {"user": "userId", "item": "movieId"} (digits: column numbers)."""
    if not text:
        return None
    mapping = {}
    for part in text.split(","):
        role, sep, column = part.partition("=")
        if not sep or not role.strip() or not column.strip():
            raise RecvizError(f"cannot read mapping entry {part!r}", fix="write it as role=column, e.g. user=userId")
        column = column.strip()
        mapping[role.strip()] = int(column) if column.isdigit() else column
    return mapping


def cmd_import(args) -> int:
    from recviz.data.load import save_named, saved_path

    data = save_named(args.name, args.path, mapping=parse_mapping(args.mapping),
                      delimiter=args.delimiter, dedup=args.dedup, replace=args.replace, titles=args.titles,
                      to=args.to, sample_users=run_option("sample_users").parse(args.sample_users or 0))
    stats = data.stats()
    version = data.meta.get("version")
    if args.json:
        print(json.dumps({**stats, "saved_as": str(saved_path(args.name)), "version": version,
                          "fingerprint": data.meta.get("fingerprint")}))
    else:
        print(f"saved '{args.name}' v{version}: {stats['users']:,} users × {stats['items']:,} items, "
              f"{stats['interactions']:,} interactions → use --dataset {args.name}")
    return 0


def cmd_titles(args) -> int:
    from recviz.data import saved

    if not saved.exists(args.name):
        raise RecvizError(f"no dataset is saved as '{args.name}'", fix="run `recviz datasets` to see the saved names")
    got = saved.add_titles(args.name, args.file)
    print(f"'{args.name}': {got['matched']:,} of its {got['items']:,} items have a title now "
          "(every version; runs show them at once)")
    return 0


def cmd_inspect(args) -> int:
    data = load_data(config_from_args(args))
    stats = data.stats()
    if args.json:
        print(json.dumps(stats))
        return 0
    print(f"{stats['name'] or args.dataset}: {stats['users']:,} users × {stats['items']:,} items, "
          f"{stats['interactions']:,} interactions, density {stats['density']:.4%}")
    for key in ("ratings", "behaviors"):
        if key in stats:
            print(f"  {key}: " + ", ".join(f"{k}: {v:,}" for k, v in stats[key].items()))
    if "given_test" in stats:
        g = stats["given_test"]
        print(f"  given test set: {g['users']:,} users, {g['negatives_per_user']} negatives each")
    return 0
