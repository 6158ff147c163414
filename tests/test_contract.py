"""One contract every registered model keeps — present ones, future ones, and the test-only toy
(`tests/toy_model.py`) — with no line of its own here: what data a model gets follows from its
declaration (`needs`), and every check is the same for all.

1. It fits a small dataset and reports sane metrics (and epochs, if it trains in epochs).
2. It beats ItemPop on planted-signal data.
3. The same config and seed give the same metrics twice (CPU).
4. Its saved artifacts reload to identical scores.
5. A cancel ends it with its best epoch's weights.
6. Every declared option is a flag in `recviz train --model M --help` and a field on the Train page.
"""

import contextlib
import io

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from recviz.config import RunConfig
from recviz.errors import Cancelled
from recviz.eval.protocols import evaluate
from recviz.models import registry
from recviz.experiments import artifacts, experiment
from recviz.experiments.record import main_phase
from recviz.training.loop import fit
from tests.test_app import ROOT
from tests.toy_model import TOY

pytestmark = pytest.mark.usefixtures("toy_model")

YARDSTICK = "itempop"
PLANTED = {(): "synthetic:users=300,items=200,interactions=8000",
           ("rating",): "synthetic:users=300,items=200,interactions=8000",
           ("behavior",): "synthetic-multi:users=300,items=200,interactions=8000"}
SPECS = {**registry.MODELS, TOY.name: TOY}  # the toy is registered by the `toy_model` fixture
MODELS = list(SPECS)


def config_for(name: str, **options) -> RunConfig:
    """The model's defaults on planted data it can be fed, at most 8 epochs, one thread."""
    spec = registry.get(name)
    if spec.has("epochs"):
        options.setdefault("epochs", min(8, spec.option("epochs").default))
    target = "buy" if "behavior" in spec.needs else None
    return RunConfig.build(dataset=PLANTED[spec.needs], model=name, target=target, candidates=50, threads=1,
                           device="cpu", **options)


@pytest.fixture(scope="module")
def results():
    return {}


def trained(name: str, results: dict):
    if name not in results:
        results[name] = experiment.run(config_for(name))
    return results[name]


@pytest.mark.parametrize("name", MODELS)
def test_fits_and_reports(name, results):
    result = trained(name, results)
    spec = registry.get(name)
    assert all(0.0 <= v <= 1.0 for v in result.test.metrics.values())
    assert len(result.test.users) > 50
    if spec.iterative:  # the model's own phase (NeuMF pre-trains GMF and MLP first, one numbering)
        own = main_phase(result.history)
        assert 1 <= len(own) <= result.config.options["epochs"]
        assert result.best_epoch in {h.epoch for h in own}
        assert result.valid.metrics == pytest.approx(result.history[result.best_epoch - 1].valid)


@pytest.mark.parametrize("name", [m for m in MODELS if m != YARDSTICK])
def test_beats_itempop_on_planted_data(name, results):
    spec = registry.get(name)
    pop = experiment.run(config_for(YARDSTICK).replace(dataset=PLANTED[spec.needs], target=config_for(name).target))
    mine = trained(name, results)
    assert mine.test.metrics["NDCG@10"] > pop.test.metrics["NDCG@10"] + 0.02, (mine.test.metrics, pop.test.metrics)


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_metrics(name, results):
    first = trained(name, results)
    again = experiment.run(first.config)
    assert again.test.metrics == first.test.metrics and again.best_epoch == first.best_epoch


@pytest.mark.parametrize("name", MODELS)
def test_saved_artifacts_reload_to_identical_scores(name, results, tmp_path):
    result = trained(name, results)
    artifacts.save(tmp_path, result)
    model, meta, _ = artifacts.load_model(tmp_path)
    users = np.arange(result.data.n_users)
    np.testing.assert_array_equal(model.score_all(users), result.model.score_all(users))
    assert meta["config"] == result.config.to_dict()


@pytest.mark.parametrize("name", [m for m in MODELS if SPECS[m].iterative])
def test_cancel_keeps_the_best_epoch(name):
    config = config_for(name, patience=0)
    split = experiment.prepare_split(config)
    model = experiment.build_model(config)
    own = []  # epochs of the model's own phase (NeuMF pre-trains GMF and MLP before its own)
    with pytest.raises(Cancelled) as info:
        fit(model, split, on_epoch=lambda h: own.append(h) if h.phase == name else None,
                  should_stop=lambda: len(own) >= 3)
    history = main_phase(info.value.history)
    assert history == own and len(own) == 3 and model.best_epoch in {h.epoch for h in own}
    best = next(h for h in history if h.epoch == model.best_epoch)
    assert best.valid["NDCG@10"] == max(h.valid["NDCG@10"] for h in history)
    assert evaluate(model, split, "valid").metrics == pytest.approx(best.valid)


@pytest.mark.parametrize("name", MODELS)
def test_every_option_is_a_flag(name):
    from recviz.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["train", "--model", name, "--help"])
    text = out.getvalue()
    for option in registry.get(name).options:
        assert option.flag in text, (name, option.name)
    for preset in registry.get(name).presets:
        assert preset in text


def test_every_option_is_a_field_on_the_train_page(monkeypatch):
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=60).run()
    for name in MODELS:
        at.selectbox(key="model").set_value(name).run()
        assert not at.exception, [e.value for e in at.exception]
        spec = registry.get(name)
        keys = {w.key for w in at.main if getattr(w, "key", None)}
        for option in spec.options:
            assert f"opt.{name}.None.{option.name}" in keys, (name, option.name)
        others = {o.name for m in MODELS for o in registry.get(m).options} - set(spec.option_names)
        assert not any(k.startswith(f"opt.{name}.None.") and k.split(".")[-1] in others for k in keys)


def test_the_readme_shows_this_toy_model_verbatim():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### Adding a model")[1].split("```python\n")[1].split("```")[0]
    assert block.strip() in (ROOT / "tests" / "toy_model.py").read_text()


def test_the_readme_table_lists_every_built_in_model():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Models")[1].split("###")[0]
    names = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert names == set(registry.MODELS) - {TOY.name}
