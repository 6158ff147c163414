"""`recviz` — everything the app does, headless.

The flags are generated from the declarations: the run settings from `RunConfig`'s fields, a
model's options from its `ModelSpec` (so `recviz train --model dmf --help` lists DMF's options with
their defaults, ranges and the paper's values). Nothing here repeats a default.

Contract other tools rely on: with `--json`, the LAST line of stdout is one JSON object. Errors a
person can fix print as one readable message on stderr (exit 2), never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from recviz.commands.common import OPTION_PREFIX
from recviz.config import DATA_FIELDS, RUN_SETTINGS, run_option
from recviz.errors import RecvizError, StoreError
from recviz.models import registry
from recviz.options import Option, format_value


def main(argv: list[str] | None = None) -> int:
    """Run one command. The one error boundary: a problem the user can fix prints its message
    (exit 2; it is also logged, with where it was raised); a damaged, full or unwritable run store prints how to recover and logs its cause
    (exit 1); anything unexpected prints one sentence naming a log file that holds the traceback
    (exit 1); a closed pipe (`recviz runs | head`) ends quietly."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(peek_model(argv))
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 1
        code = args.func(args) or 0
        sys.stdout.flush()
        return code
    except StoreError as err:  # the store itself: the message says how to recover, the log holds the cause
        from recviz import crashlog

        log = crashlog.write(err, "recviz " + " ".join(argv))
        print(f"recviz: error: {err}" + (f"\n  Details: {log}" if log else ""), file=sys.stderr)
        return 1
    except RecvizError as err:
        from recviz import crashlog

        crashlog.write(err, "recviz " + " ".join(argv))  # for whoever helps later; the message suffices now
        print(f"recviz: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("recviz: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away: nothing left to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 — the boundary: no traceback reaches a person
        from recviz import crashlog
        from recviz.experiments.reasons import cause

        log = crashlog.write(exc, "recviz " + " ".join(argv))
        known = cause(exc)  # a full disk, a directory that cannot be written: say so, not "internal error"
        print(f"recviz: error: {known}\n  Details: {log}" if known else f"recviz: {crashlog.message(exc, log)}",
              file=sys.stderr)
        return 1


def peek_model(argv: list[str]) -> str | None:
    """The value of --model, if given, before the real parse: a model's flags depend on it."""
    for k, arg in enumerate(argv):
        if arg == "--model" and k + 1 < len(argv):
            return argv[k + 1]
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
    return None


def build_parser(model: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; `train` and `sweep` also get `model`'s own options."""
    spec = registry.MODELS.get(model) if model else None
    p = argparse.ArgumentParser(prog="recviz", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(title="commands")

    s = sub.add_parser("datasets", help="list the catalog, what is cached and saved uploads")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_lazy("data", "cmd_datasets"))

    s = sub.add_parser("import", help="read a file/dir/zip, validate it and save it under a name")
    s.add_argument("path", help="file, directory or zip in any supported format")
    s.add_argument("--name", required=True, help="name to use as --dataset afterwards")
    s.add_argument("--replace", action="store_true",
                   help="the name exists: save this as its next version (runs trained on earlier versions keep them)")
    s.add_argument("--delimiter", help="for generic tables: ',', 'tab', ';', '|' or '::' (default: sniffed)")
    s.add_argument("--map", dest="mapping", metavar="ROLE=COLUMN,...",
                   help="for generic tables: e.g. user=userId,item=movieId,rating=stars,timestamp=ts")
    s.add_argument("--dedup", choices=["error", "last", "first", "keep"],
                   help="duplicate (user, item) rows: refuse (default), keep the latest, the earliest, or all")
    s.add_argument("--titles", metavar="FILE",
                   help="item titles and genres to keep beside it: a table with an item id and a title column "
                        "(e.g. item_id,title,genres), or MovieLens' u.item / movies.dat / movies.csv")
    _settings(s, ("sample_users",))
    s.add_argument("--to", choices=["npz", "parquet"], default="npz",
                   help="how the saved version is stored: npz (default) or parquet (column-wise, "
                        "compressed: for large logs, and readable by other tools)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_lazy("data", "cmd_import"))

    s = sub.add_parser("titles", help="give a saved dataset item titles and genres (all its versions)")
    s.add_argument("name", help="the saved dataset (see `recviz datasets`)")
    s.add_argument("file", help="a table with an item id and a title column, or MovieLens' u.item / movies.dat / "
                                "movies.csv")
    s.set_defaults(func=_lazy("data", "cmd_titles"))

    s = sub.add_parser("inspect", help="users, items, interactions, density, rating and behaviour counts")
    _settings(s, DATA_FIELDS)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_lazy("data", "cmd_inspect"))

    s = sub.add_parser("train", help="train/fit a model and evaluate it (add --model M --help for M's options)",
                       description=_model_description(spec))
    _training_args(s, spec)
    _mlflow_flag(s)
    s.add_argument("--json", action="store_true", help="last line of stdout: one JSON object")
    s.set_defaults(func=_lazy("train", "cmd_train"))

    s = sub.add_parser("sweep", help="one stored run per value of one option (the papers' figures)",
                       description=_model_description(spec))
    _training_args(s, spec)
    sweepable = ", ".join(o.name for o in spec.sweepable()) if spec else "see --model M --help"
    s.add_argument("--param", required=True, help=f"the option to vary ({sweepable})")
    s.add_argument("--values", required=True, help="comma-separated (layer lists: separated by ';'), or a range "
                                                   "START:STOP:STEP with the stop included (0:1:0.2 is 0, 0.2, ..., 1)")
    s.add_argument("--seeds", metavar="S,S,...",
                   help="run every value with each of these seeds (e.g. 0,1,2; instead of --seed); the table "
                        "shows mean ± std over them, and so does the Results page")
    s.add_argument("--out", help="also write the table as JSON here")
    _mlflow_flag(s)
    s.add_argument("--json", action="store_true", help="last line of stdout: the table as one JSON object")
    s.set_defaults(func=_lazy("sweep", "cmd_sweep"))

    s = sub.add_parser("export", help="send stored runs to MLflow (a sweep's runs under one parent run)")
    s.add_argument("--mlflow", nargs="?", const="", required=True, metavar="URI",
                   help="tracking URI (default: MLflow's own, MLFLOW_TRACKING_URI or ./mlflow.db); "
                        "a bare number after --mlflow is read as a run id")
    s.add_argument("run_ids", nargs="*", type=bounded(1, 2**62), metavar="RUN_ID", help="stored runs (see `recviz runs`)")
    s.add_argument("--experiment", help="the MLflow experiment (default: RecViz's own, named recviz)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_lazy("runs", "cmd_export"))

    s = sub.add_parser("runs", help="list stored runs (newest first)")
    s.add_argument("--status", choices=["queued", "running", "done", "failed", "cancelled"])
    s.add_argument("--model", help="only runs of this model")
    s.add_argument("--limit", type=bounded(1, 100_000), default=50, help="at most this many runs (default 50)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_lazy("runs", "cmd_runs"))

    s = sub.add_parser("rename", help="give a run a name (shown beside its id in the app and `recviz runs`)")
    s.add_argument("run", type=bounded(1, 2**62), help="run id (see `recviz runs`)")
    s.add_argument("name", help="the new name; '' removes it")
    s.set_defaults(func=_lazy("runs", "cmd_rename"))

    s = sub.add_parser("cancel", help="stop queued or running runs (a running one keeps its finished epochs)")
    s.add_argument("runs", type=bounded(1, 2**62), nargs="+", metavar="RUN", help="run ids (see `recviz runs`)")
    s.set_defaults(func=_lazy("runs", "cmd_cancel"))

    s = sub.add_parser("delete", help="delete runs with their epochs and files (asks first)")
    s.add_argument("runs", type=bounded(1, 2**62), nargs="+", metavar="RUN", help="run ids (see `recviz runs`)")
    s.add_argument("--yes", action="store_true", help="do not ask (needed when not run from a terminal)")
    s.set_defaults(func=_lazy("runs", "cmd_delete"))

    from recviz.experiments.executors import ADDRESS_HELP, EXECUTORS, get

    labels = ", ".join(f"{name} ({get(name).label})" for name in EXECUTORS)
    s = sub.add_parser("executor", help=f"where the app's queued runs train (the Train page's setting): show it, "
                                        f"or choose one: {labels}")
    s.add_argument("executor", nargs="?", choices=EXECUTORS,
                   help="; ".join(f"{name}: {get(name).help}" for name in EXECUTORS) + " (default: show the choice)")
    addressed = " or ".join(name for name in EXECUTORS if get(name).takes_address)
    s.add_argument("--address", metavar="ADDR", help=f"with {addressed}: " + ADDRESS_HELP)
    s.add_argument("--check", action="store_true", help="join the Ray cluster now and show what it offers")
    s.set_defaults(func=_lazy("runs", "cmd_executor"))

    s = sub.add_parser("recommend", help="a user's top-K items from a finished run")
    s.add_argument("--run", type=bounded(1, 2**62), required=True, help="run id (see `recviz runs`)")
    s.add_argument("--user", required=True, help="the user's raw id as in the dataset")
    s.add_argument("-k", type=bounded(1, 10_000), default=10, help="how many items (default 10, at most the stored 20)")
    s.add_argument("--why", action="store_true",
                   help="per item, the user's history items that most support it (ItemKNN: neighbours and their "
                        "similarity; embedding models: closest in the model's item space)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_lazy("runs", "cmd_recommend"))

    from recviz.commands.compare import run_ids
    from recviz.eval.metrics import PRIMARY as DEFAULT_METRIC

    s = sub.add_parser("compare", help="two runs on the same split, user by user: Wilcoxon, paired t, bootstrap CI, "
                                       "wins (A and B may be seed groups: 4,5,6 7,8,9)")
    s.add_argument("a", type=run_ids, metavar="A", help="run id, or comma-separated run ids of one setting over seeds")
    s.add_argument("b", type=run_ids, metavar="B", help="the run (or seed group) to compare with, on the same split(s)")
    s.add_argument("--metric", default=DEFAULT_METRIC, help=f"per-user test metric (default {DEFAULT_METRIC})")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_lazy("compare", "cmd_compare"))

    s = sub.add_parser("report", help="beyond-accuracy metrics (coverage, popularity, Gini, novelty, long tail) and "
                                      "a metric by user activity and held-out item popularity, for stored runs")
    s.add_argument("runs", type=bounded(1, 2**62), nargs="+", metavar="RUN", help="run ids (see `recviz runs`)")
    s.add_argument("-k", type=bounded(1, 10_000), default=10, help="list length K (default 10, at most the stored 20)")
    s.add_argument("--metric", default=DEFAULT_METRIC, help=f"the metric sliced (default {DEFAULT_METRIC})")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_lazy("compare", "cmd_report"))

    from recviz.experiments.bench import DEFAULT_MODELS

    s = sub.add_parser("bench", help="every model with its defaults (or a preset) over seeds: table + JSON")
    _settings(s, ("dataset",))
    s.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help=f"comma-separated MODEL or MODEL:PRESET (default: {','.join(DEFAULT_MODELS)}; "
                        f"models: {', '.join(registry.MODELS)})")
    s.add_argument("--preset", help="a preset for every model that declares it, e.g. paper (the papers' settings)")
    s.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    s.add_argument("--batch-sizes", help="comma-separated batch sizes (default: each model's own)")
    s.add_argument("--epochs", type=bounded(1, 1000), help="maximum epochs (default: each model's own)")
    _settings(s, ("valid", "device", "threads"))
    s.add_argument("--out", default="bench.json", help="where to write rows and means as JSON")
    s.add_argument("--store", action="store_true", help="also store every run in the run store")
    s.add_argument("--peak-test", action="store_true",
                   help="also evaluate test after every epoch and show the epoch best on test, as the "
                        "papers' code reports (optimistic; never used to choose; not with --store)")
    s.add_argument("--json", action="store_true", help="last line of stdout: the means as one JSON object")
    s.set_defaults(func=_lazy("bench", "cmd_bench"))
    return p


def bounded(low: int, high: int):
    """An argparse type: an integer from `low` to `high`, or argparse's own readable error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, not {value}")
        return value
    return parse


def _mlflow_flag(s: argparse.ArgumentParser) -> None:
    s.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI",
                   help="also log each finished run to MLflow: a tracking URI, or none for MLflow's "
                        "default store (MLFLOW_TRACKING_URI, else ./mlflow.db); needs `pip install mlflow`")


def _lazy(module: str, name: str):
    """A command implemented in recviz.commands.<module>, imported only when it runs."""
    def call(args):
        import importlib

        return getattr(importlib.import_module(f"recviz.commands.{module}"), name)(args)
    return call


# ---- flags generated from declarations ------------------------------------------------------------
def add_option(group, option: Option, dest: str | None = None, required: bool = False) -> None:
    """One flag for one declared option. The default is None ("not given"), so that a preset or
    the model's declared default fills it; the help shows the declared default."""
    kwargs = dict(dest=dest or option.name, default=None, help=option.describe().replace("%", "%%"))
    if option.kind == "bool":
        group.add_argument(option.flag, action=argparse.BooleanOptionalAction, **kwargs)
        return
    if option.choices:
        kwargs["choices"] = option.choices
    group.add_argument(option.flag, metavar=_metavar(option), required=required, **kwargs)


def _metavar(option: Option) -> str | None:
    if option.choices:
        return None
    return {"int": "N", "float": "X", "widths": "W,W,..", "str": "TEXT"}[option.kind]


def _settings(parser, names) -> None:
    for name in names:
        add_option(parser, run_option(name), required=name == "dataset")


def _training_args(s: argparse.ArgumentParser, spec) -> None:
    _settings(s, DATA_FIELDS)
    _settings(s, RUN_SETTINGS)
    s.add_argument("--model", required=True, metavar="M",
                   help=f"one of {', '.join(registry.MODELS)}; `--model M --help` lists M's own options")
    presets = ", ".join(spec.presets) if spec and spec.presets else "paper, where a model declares it"
    s.add_argument("--preset", help=f"a named set of the model's options ({presets})")
    _executor_args(s)
    if spec is None:
        return
    g = s.add_argument_group(f"options of {spec.name} ({spec.title}; defaults are the best settings known)")
    for option in spec.options:
        add_option(g, option, dest=OPTION_PREFIX + option.name)


def _executor_args(s: argparse.ArgumentParser) -> None:
    from recviz.experiments.executors import ADDRESS_HELP, REGISTRY

    names = list(REGISTRY)
    needs = [f"{name} needs `{cls.install}`" for name, cls in REGISTRY.items() if cls.install]
    s.add_argument("--executor", choices=names, default=names[0],
                   help="; ".join(f"{name}: {cls.help}" for name, cls in REGISTRY.items())
                        + (f" ({'; '.join(needs)})" if needs else "") + f"; default {names[0]}")
    addressed = " or ".join(name for name, cls in REGISTRY.items() if cls.takes_address)
    s.add_argument("--address", default="auto", metavar="ADDR", help=f"with --executor {addressed}: " + ADDRESS_HELP)


def _model_description(spec) -> str | None:
    if spec is None:
        return None
    presets = "; ".join(f"--preset {name}: " + ", ".join(f"{k} {format_value(v)}" for k, v in values.items())
                        for name, values in spec.presets.items())
    return f"{spec.title} — {spec.summary} ({spec.paper})." + (f" Presets: {presets}." if presets else "")


if __name__ == "__main__":
    raise SystemExit(main())
