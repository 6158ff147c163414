"""`recviz` — everything the app does, headless.

Contract other tools rely on: with `--json`, the LAST line of stdout is one JSON object. Errors a
person can fix print as one readable message on stderr (exit 2), never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from recviz.config import RunConfig
from recviz.errors import RecvizError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return args.func(args) or 0
    except RecvizError as err:
        print(f"recviz: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("recviz: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recviz", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(title="commands")

    s = sub.add_parser("datasets", help="list the catalog, what is cached and saved uploads")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_datasets)

    s = sub.add_parser("import", help="read a file/dir/zip, validate it and save it under a name")
    s.add_argument("path", help="file, directory or zip in any supported format")
    s.add_argument("--name", required=True, help="name to use as --dataset afterwards")
    s.add_argument("--delimiter", help="for generic tables: ',', 'tab', ';', '|' or '::' (default: sniffed)")
    s.add_argument("--map", dest="mapping", metavar="ROLE=COLUMN,...",
                   help="for generic tables: e.g. user=userId,item=movieId,rating=stars,timestamp=ts")
    s.add_argument("--dedup", choices=["error", "last", "first", "keep"],
                   help="duplicate (user, item) rows: refuse (default), keep the latest, the earliest, or all")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("inspect", help="users, items, interactions, density, rating and behaviour counts")
    _data_args(s)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("train", help="train/fit a model and evaluate it")
    _data_args(s)
    _run_args(s)
    s.add_argument("--json", action="store_true", help="last line of stdout: one JSON object")
    s.set_defaults(func=_lazy("train", "cmd_train"))

    s = sub.add_parser("sweep", help="one stored run per value of one parameter (the papers' figures)")
    _data_args(s)
    _run_args(s)
    s.add_argument("--param", required=True, help="eta | neg_ratio | emb_dim | layers | lr | neighbors")
    s.add_argument("--values", required=True, help="comma-separated (layers: separated by ';')")
    s.add_argument("--out", help="also write the table as JSON here")
    s.add_argument("--json", action="store_true", help="last line of stdout: the table as one JSON object")
    s.set_defaults(func=_lazy("sweep", "cmd_sweep"))

    s = sub.add_parser("runs", help="list stored runs (newest first)")
    s.add_argument("--status", choices=["queued", "running", "done", "failed", "cancelled"])
    s.add_argument("--model", help="only runs of this model")
    s.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_lazy("runs", "cmd_runs"))

    s = sub.add_parser("recommend", help="a user's top-K items from a finished run")
    s.add_argument("--run", type=int, required=True, help="run id (see `recviz runs`)")
    s.add_argument("--user", required=True, help="the user's raw id as in the dataset")
    s.add_argument("-k", type=int, default=10, help="how many items (default 10, at most the stored 20)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_lazy("runs", "cmd_recommend"))

    from recviz.bench import CHOSEN, DEFAULT_MODELS

    s = sub.add_parser("bench", help="the NCF paper's comparison on one dataset: table + JSON")
    s.add_argument("--dataset", required=True, help="catalog name, saved name, or a file/dir/zip path")
    s.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help=f"comma-separated (default: {','.join(DEFAULT_MODELS)}; "
                        f"also {', '.join(m for m in CHOSEN if m not in DEFAULT_MODELS)})")
    s.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    s.add_argument("--batch-sizes", default="256", help="comma-separated batch sizes (default 256)")
    s.add_argument("--epochs", type=int, help="maximum epochs (default 20, the paper's setting)")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    s.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    s.add_argument("--valid", choices=["latest", "random"], default="random",
                   help="validation item: random earlier one as the papers tuned (default), or the one before test")
    s.add_argument("--out", default="bench.json", help="where to write rows and means as JSON")
    s.add_argument("--store", action="store_true", help="also store every run in the run store")
    s.add_argument("--peak-test", action="store_true",
                   help="also evaluate test after every epoch and show the epoch best on test, as the "
                        "papers' code reports (optimistic; never used to choose; not with --store)")
    s.add_argument("--json", action="store_true", help="last line of stdout: the means as one JSON object")
    s.set_defaults(func=_lazy("bench", "cmd_bench"))
    return p


def _lazy(module: str, name: str):
    """A command implemented in recviz.commands.<module>, imported only when it runs."""
    def call(args):
        import importlib

        return getattr(importlib.import_module(f"recviz.commands.{module}"), name)(args)
    return call


def _run_args(s: argparse.ArgumentParser) -> None:
    from recviz.models.registry import MODELS

    s.add_argument("--model", required=True, help=" | ".join(MODELS) + " (see the README's model table)")
    s.add_argument("--protocol", choices=["loo", "ratio"], default="loo",
                   help="loo: leave-one-out + sampled candidates; ratio: 80/10/10 + full ranking")
    s.add_argument("--candidates", type=int, default=100, help="sampled candidates per held-out item (loo)")
    s.add_argument("--valid", choices=["latest", "random"], default="latest",
                   help="loo validation item: the one just before test (default) or a random earlier one "
                        "(as the NCF and DMF papers tuned)")
    s.add_argument("--target", help="behaviour whose latest interaction is held out (multi-behaviour data)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--neighbors", type=int, default=100, help="ItemKNN neighbourhood size")
    s.add_argument("--shrink", type=float, default=0.0, help="ItemKNN similarity shrinkage")
    _neural_args(s)


def _neural_args(s: argparse.ArgumentParser) -> None:
    d = RunConfig()
    g = s.add_argument_group("trained models (all but itempop and itemknn)")
    g.add_argument("--emb-dim", type=int, default=d.emb_dim, help=f"embedding size / GMF factors (default {d.emb_dim})")
    g.add_argument("--layers", default=d.layers,
                   help=f"MLP tower widths from the concatenated input (default {d.layers}; paper: 256,128,64)")
    g.add_argument("--neg-ratio", type=int, default=d.neg_ratio, help=f"negatives per positive (default {d.neg_ratio})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"learning rate (default {d.lr})")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    g.add_argument("--epochs", type=int, default=d.epochs, help=f"maximum epochs (default {d.epochs})")
    g.add_argument("--patience", type=int, default=d.patience,
                   help=f"stop after this many epochs without better validation NDCG@10; 0 = never (default {d.patience})")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"default {d.weight_decay}")
    g.add_argument("--pretrain", action="store_true", help="NeuMF: initialise from trained GMF and MLP")
    g.add_argument("--device", default=d.device, help="auto (CUDA when present) | cpu | cuda | cuda:N")
    g.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (0 = torch's default)")
    g.add_argument("--eta", type=float, default=d.eta, help=f"EINMF: weight of the implicit loss (default {d.eta})")
    g.add_argument("--dropout", type=float, default=d.dropout, help="dropout after each hidden layer of MLP, NeuMF, EINMF (EINMF paper: 0.2)")
    g.add_argument("--dmf-loss", choices=["nce", "ce"], default=d.dmf_loss,
                   help="DMF: normalized cross-entropy (rating / max rating) or binary")
    g.add_argument("--neg-source", choices=["uniform", "supportive"], default=d.neg_source,
                   help="mbnmf: negatives uniform, or from items touched only through supportive behaviours")
    g.add_argument("--eals-c0", type=float, default=d.eals_c0, help=f"eALS: weight of missing entries (default {d.eals_c0:g})")
    g.add_argument("--eals-alpha", type=float, default=d.eals_alpha, help=f"eALS: popularity exponent (default {d.eals_alpha})")
    g.add_argument("--reg", type=float, default=d.reg, help=f"eALS: L2 regularisation (default {d.reg:g})")


def _data_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--dataset", required=True,
                   help="catalog name (e.g. ml-100k, synthetic), saved name, or a file/dir/zip path")
    s.add_argument("--min-user", type=int, default=0, help="k-core: keep users with ≥ this many interactions")
    s.add_argument("--min-item", type=int, default=0, help="k-core: keep items with ≥ this many interactions")
    s.add_argument("--min-rating", type=float, help="only ratings ≥ this count as positives")


def _config(args: argparse.Namespace) -> RunConfig:
    keys = RunConfig.__dataclass_fields__
    return RunConfig.from_dict({k: v for k, v in vars(args).items() if k in keys})


def _download_bar(done: int, total: int | None) -> None:
    if total:
        filled = int(30 * done / total)
        sys.stderr.write(f"\r  downloading [{'#' * filled}{'.' * (30 - filled)}] {done / 1e6:6.1f}/{total / 1e6:.1f} MB")
    else:
        sys.stderr.write(f"\r  downloading {done / 1e6:6.1f} MB")
    sys.stderr.flush()


# ---- commands ---------------------------------------------------------------------------------------
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


def _parse_mapping(text: str | None) -> dict | None:
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

    data = save_named(args.name, args.path, mapping=_parse_mapping(args.mapping),
                      delimiter=args.delimiter, dedup=args.dedup)
    stats = data.stats()
    if args.json:
        print(json.dumps({**stats, "saved_as": str(saved_path(args.name))}))
    else:
        print(f"saved '{args.name}': {stats['users']:,} users × {stats['items']:,} items, "
              f"{stats['interactions']:,} interactions → use --dataset {args.name}")
    return 0


def cmd_inspect(args) -> int:
    from recviz.train.experiment import prepare_data

    data = prepare_data(_config(args), progress=_download_bar)
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


if __name__ == "__main__":
    raise SystemExit(main())
