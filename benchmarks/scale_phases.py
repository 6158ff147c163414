"""The phases of `benchmarks/scale.py`: each runs, in a child process of its own, the code the CLI
and the app run on the scale log, and returns its row's fields (`work_s`, `base_rss`, `note`, ...).
The table of phases is in `scale.py`'s docstring."""

from __future__ import annotations

import json
import resource
import shutil
import time

NAME = "scale"
TOP_N = 20


def _mb(n) -> str:
    return "" if n is None else f"{n / 2**20:,.0f} MB" if n < 2**30 else f"{n / 2**30:,.2f} GB"


def _base() -> int:
    """Peak resident bytes so far: taken after a phase's imports, before its work."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _config(args, **kw):
    from recviz.config import RunConfig

    return RunConfig(dataset=NAME, seed=args.seed, **kw)


def phase_generate(args, where) -> dict:
    from benchmarks.taobao_like import write_parquet
    from recviz.files import write_json

    base = _base()
    if where["log"].exists() and where["facts"].exists():
        facts = json.loads(where["facts"].read_text())
        return {"base_rss": base, "work_s": 0.0, "note": f"reused {where['log'].name}: " + _describe_log(facts)}
    start = time.perf_counter()
    facts = write_parquet(where["log"], args.rows, args.seed)
    work = time.perf_counter() - start
    facts["file_bytes"] = where["log"].stat().st_size
    write_json(where["facts"], facts)
    return {"base_rss": base, "work_s": work, "note": _describe_log(facts)}


def _describe_log(facts: dict) -> str:
    shares = "/".join(f"{100 * v / facts['rows']:.1f}" for v in facts["behaviors"].values())
    return (f"{facts['users']:,} users, {facts['items']:,} items, pv/cart/fav/buy {shares} %, "
            f"{facts['file_bytes'] / 2**20:,.0f} MB Parquet")


def phase_import(args, where) -> dict:
    import zipfile

    import numpy as np

    from recviz import cli
    from recviz.data import saved
    from recviz.files import write_json

    base = _base()
    shutil.rmtree(where["home"] / "splits", ignore_errors=True)  # splits of an earlier import's data
    start = time.perf_counter()
    code = cli.main(["import", str(where["log"]), "--name", NAME, "--dedup", "last", "--replace", "--json"])
    work = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"recviz import exited {code}")
    version = saved.versions(NAME)[-1]
    arrays = 0  # the final arrays' bytes, from the saved file's headers (nothing loaded)
    with zipfile.ZipFile(saved._file(NAME, version)) as z:
        for name in z.namelist():
            if name.split(".")[0] in ("user", "item", "timestamp", "behavior", "rating", "user_ids", "item_ids"):
                with z.open(name) as fh:
                    magic = np.lib.format.read_magic(fh)
                    header = np.lib.format.read_array_header_1_0 if magic == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = header(fh)
                    arrays += int(np.prod(shape)) * dtype.itemsize
    write_json(where["home"] / "arrays.json", {"bytes": arrays})
    return {"base_rss": base, "work_s": work, "arrays_bytes": arrays,
            "note": f"{version['interactions']:,} interactions ({args.rows - version['interactions']:,} repeats "
                    f"dropped), {version['users']:,} users, {version['items']:,} items; arrays {_mb(arrays)}"}


def phase_inspect(args, where) -> dict:
    from recviz import cli

    base = _base()
    start = time.perf_counter()
    code = cli.main(["inspect", "--dataset", NAME, "--json"])
    if code != 0:
        raise RuntimeError(f"recviz inspect exited {code}")
    return {"base_rss": base, "work_s": time.perf_counter() - start, "note": "load + stats()"}


def _split_phase(args, where, protocol: str) -> dict:
    from recviz import paths as rpaths
    from recviz.experiments.experiment import prepare_data, prepare_split

    base = _base()
    config = _config(args, protocol=protocol, candidates=100)
    for old in rpaths.splits_dir().glob(f"*-{protocol}-*-all-{args.seed}.npz"):
        old.unlink()  # drawn fresh, as a first run on the data does
    start = time.perf_counter()
    data = prepare_data(config)
    loaded = time.perf_counter()
    split = prepare_split(config, data)
    work = time.perf_counter() - loaded
    info = split.info
    evaluated = info.get("users_evaluated", info.get("users_evaluated_test"))
    return {"base_rss": base, "work_s": work,
            "note": f"load {loaded - start:.1f} s; {len(split.train_rows):,} train rows, {evaluated:,} users evaluated"}


def phase_split_loo(args, where) -> dict:
    return _split_phase(args, where, "loo")


def phase_split_ratio(args, where) -> dict:
    return _split_phase(args, where, "ratio")


def _run_phase(args, model: str) -> dict:
    from recviz.experiments.experiment import prepare_data, prepare_split, run

    base = _base()
    config = _config(args, model=model, protocol="loo", candidates=100)
    start = time.perf_counter()
    data = prepare_data(config)
    split = prepare_split(config, data)  # the split-loo phase's, reloaded
    ready = time.perf_counter()
    result = run(config, data=data, split=split)
    work = time.perf_counter() - ready
    m = result.test.metrics
    return {"base_rss": base, "work_s": work,
            "note": f"fit + valid/test evaluation (load + split reload {ready - start:.1f} s before it); "
                    f"test HR@10 {m['HR@10']:.3f}, NDCG@10 {m['NDCG@10']:.3f}"}


def phase_itempop(args, where) -> dict:
    return _run_phase(args, "itempop")


def phase_itemknn(args, where) -> dict:
    return _run_phase(args, "itemknn")


def phase_gmf(args, where) -> dict:
    from benchmarks import scale_training

    return scale_training.batches_phase(args, "gmf", NAME, _base)


def phase_mbnmf(args, where) -> dict:
    from benchmarks import scale_training

    return scale_training.batches_phase(args, "mbnmf", NAME, _base)


def split_for(model: str):
    """The hidden child `split-MODEL`: the training phase's split drawn in a process of its own."""
    def phase(args, where) -> dict:
        from benchmarks import scale_training

        return scale_training.draw_split(args, model, NAME)
    return phase


def phase_topn(args, where) -> dict:
    """The Recommendations page for one user, as it pays it: the first view (load the data, the split,
    fit ItemPop, build the page's per-run view: `analysis.runview.RunView`, a first user's list: what
    a thread makes once and reuses, the tie order and its scratch), then a rerun's work for a
    user whose list the run did not store — the held-out rows, a page of the history, the held-out
    items, the list made on demand from the row index, the table shown."""
    import numpy as np

    from recviz.analysis import dataset as ds
    from recviz.analysis.runview import RunView
    from recviz.experiments.experiment import build_model, prepare_data, prepare_split

    base = _base()
    config = _config(args, model="itempop", protocol="loo", candidates=100)
    start = time.perf_counter()
    data = prepare_data(config)
    split = prepare_split(config, data)
    model = build_model(config)
    model.fit(split)
    fitted = time.perf_counter()
    view = RunView.build(split)  # what the page caches per run
    indexed = time.perf_counter()
    nobody = {"users": np.zeros(0, np.int64), "items": np.zeros((0, TOP_N), np.int64),
              "scores": np.zeros((0, TOP_N), np.float32)}  # no stored list: the page makes this user's
    view.user_list(nobody, int(view.test_users[-1]), config.seed, lambda: model)  # the first view's list
    ready = time.perf_counter()
    user = int(view.test_users[0])  # a rerun: another user
    held = view.held(user)
    shown, where = view.history_page(user, 0)
    held_items = set(view.held_items(user).tolist())
    top, scores = view.user_list(nobody, user, config.seed, lambda: model)
    table = ds.top_list(top, scores, data.item_ids, view.titles, held_out=held_items)
    work = time.perf_counter() - ready
    return {"base_rss": base, "work_s": work, "first_view_s": round(ready - start, 2),
            "note": f"first view: {ready - start:.2f} s (load, split reload and ItemPop fit {fitted - start:.2f} s, "
                    f"the page's run index {indexed - fitted:.2f} s, a first user's list {ready - indexed:.2f} s); then per "
                    f"rerun: another user's top-{len(table)} made "
                    f"on demand, {len(held)} held-out rows and history page {where.page + 1}/{where.pages} "
                    f"({len(shown)} of {where.total} rows)"}


def phase_data_page(args, where) -> dict:
    from recviz import charts
    from recviz.analysis import dataset as ds
    from recviz.data import saved
    from recviz.experiments.experiment import prepare_data

    base = _base()
    start = time.perf_counter()
    data = prepare_data(_config(args))  # what pages/ui/datasets.load_data caches
    loaded = time.perf_counter()
    view = ds.overview(data)  # what pages/ui/datasets.data_overview caches
    figures = [charts.long_tail(view.users, view.items)]
    if view.behaviors is not None:
        figures.append(charts.behavior_mix(view.behaviors))
    if view.ratings is not None:
        figures.append(charts.rating_histogram(view.ratings))
    saved.versions(NAME)
    sent = sum(len(fig.to_json()) for fig in figures)  # what the page sends the browser
    work = time.perf_counter() - loaded
    return {"base_rss": base, "work_s": work, "figure_bytes": sent,
            "note": f"load {loaded - start:.1f} s; stats, summaries, {len(figures)} charts ({_mb(sent)} of figure JSON)"}


PHASE_FUNCS = {"generate": phase_generate, "import": phase_import, "inspect": phase_inspect,
               "split-loo": phase_split_loo, "split-ratio": phase_split_ratio, "itempop": phase_itempop,
               "itemknn": phase_itemknn, "gmf": phase_gmf, "mbnmf": phase_mbnmf, "topn": phase_topn,
               "data-page": phase_data_page, "split-gmf": split_for("gmf"), "split-mbnmf": split_for("mbnmf")}
