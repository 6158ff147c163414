"""One serialisable config describes one run. The CLI, the app, the worker, sweeps and the bench all
build this same object, so a run can be repeated from its stored JSON alone.

A config is the settings every run has (declared here, on the fields, as `recviz.options.Option`s)
plus the chosen model's own options (declared beside the model; `RunConfig.options`), complete and
checked: `RunConfig(model="neumf")` holds every NeuMF option at its declared default.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

from recviz.data.split import protocol_label
from recviz.errors import RecvizError
from recviz.models import registry
from recviz.options import DEVICE, SEED, THREADS, Option

PROTOCOLS = {"loo": "leave-one-out + sampled candidates", "ratio": "80/10/10 split + full ranking"}
VALID_RULES = {"latest": "the one before test", "random": "a random earlier one (NCF/DMF papers)"}


def setting(option: Option | None = None, **declare) -> Any:
    """A RunConfig field declared by its Option (the field's name is the option's)."""
    option = option or Option(name="", **declare)
    return field(default=option.default, metadata={"option": option})


@dataclass
class RunConfig:
    # data
    dataset: str = setting(kind="str", default="synthetic",
                           help="catalog name (e.g. ml-100k, synthetic), saved name, or a file/dir/zip path")
    min_user: int = setting(kind="int", default=0, low=0, high=1_000_000,
                            help="k-core: keep users with at least this many interactions (0 = off)")
    min_item: int = setting(kind="int", default=0, low=0, high=1_000_000,
                            help="k-core: keep items with at least this many interactions (0 = off)")
    min_rating: float | None = setting(kind="float", default=None, optional=True,
                                       help="only ratings at least this high count as positives")
    sample_users: int = setting(kind="int", default=0, low=0, high=2**31 - 1, label="Sample users",
                                help="keep this many users drawn at random, with all their rows (the same "
                                     "users in every run: recviz.data.prepare.sample_users); k-core applies "
                                     "after it (0 = every user)")
    data_version: str | None = setting(kind="str", default=None, optional=True,
                                       help="the saved dataset's version a run was trained on (its content "
                                            "fingerprint), pinned when the run is created")
    # protocol
    protocol: str = setting(kind="str", default="loo", choices=tuple(PROTOCOLS), label="Protocol",
                            help="; ".join(f"{k}: {v}" for k, v in PROTOCOLS.items()))
    candidates: int = setting(kind="int", default=100, low=1, high=100_000, label="Candidates per held-out item",
                              help="sampled candidates each held-out item is ranked among (loo)")
    eval_users: int = setting(kind="int", default=0, low=0, high=2**31 - 1, label="Evaluated users",
                              help="judge validation and test on this many test users drawn with the seed, "
                                   "for full ranking at scale (0 = every user)")
    target: str | None = setting(kind="str", default=None, optional=True, label="Target behaviour (held out)",
                                 help="behaviour whose latest interaction is held out (multi-behaviour data)")
    valid: str = setting(kind="str", default="latest", choices=tuple(VALID_RULES), label="Validation item",
                         help="loo validation item: " + "; ".join(f"{k}: {v}" for k, v in VALID_RULES.items()))
    seed: int = setting(SEED)
    # unset (None): the split is drawn with `seed`, as before split_seed existed, so stored runs keep theirs
    split_seed: int | None = setting(kind="int", default=None, optional=True, low=0, high=2**31 - 1,
                                     label="Split seed",
                                     help="draw the split (held-out items, candidates) with this seed instead of "
                                          "the run's, so runs of different seeds share one split and compare user "
                                          "by user (recviz compare); empty: the run's seed")
    device: str = setting(DEVICE)
    threads: int = setting(THREADS)
    # model
    model: str = setting(kind="str", default=registry.DEFAULT_MODEL, help="the model to train")
    preset: str | None = setting(kind="str", default=None, optional=True,
                                 help="a named set of the model's options, e.g. paper (its paper's settings)")
    options: dict = field(default_factory=dict)  # the model's options, completed and checked

    def __post_init__(self):
        for opt in RUN_OPTIONS:
            setattr(self, opt.name, opt.parse(getattr(self, opt.name)))
        self.options = registry.get(self.model).resolve(self.options, self.preset)

    def pinned(self) -> RunConfig:
        """This config with the saved dataset's version it will train on recorded (a run keeps
        reading that version when the name gets a new one); unchanged for catalog data and paths."""
        from recviz.data import saved

        name, which = saved.split_ref(self.dataset)
        if self.data_version is not None or not saved.exists(name):
            return self
        version = saved.find(name, which)
        return replace(self, data_version=version["fingerprint"]) if version else self

    @property
    def data_ref(self) -> str:
        """What to load: the dataset, at its pinned version when there is one."""
        return f"{self.dataset.partition('@')[0]}@{self.data_version}" if self.data_version else self.dataset

    @property
    def drawn_with(self) -> int:
        """The seed the run's split (held-out items, candidates, sampled users) is drawn with:
        `split_seed` when set, else the run's own `seed` — so runs stored before split_seed existed,
        and runs that leave it unset, keep exactly the split they always had."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def split_key(self) -> tuple:
        """What the run's split depends on: runs with equal keys train and test on the same split
        (a sweep over a model option draws it once; two model seeds with one split seed share it).
        Names the fields of `SPLIT_FIELDS`; "split_seed" counts as the seed the split is drawn with."""
        def value(name):
            return self.data_ref if name == "dataset" else self.drawn_with if name == "split_seed" else getattr(self, name)
        return tuple(value(name) for name in SPLIT_FIELDS)

    @property
    def protocol_detail(self) -> str:
        """The words shown next to this run's metrics ("leave-one-out, 100 candidates"), as its
        split describes itself (`recviz.data.split.protocol_label`)."""
        return protocol_label(self.protocol, self.candidates if self.protocol == "loo" else None, self.valid,
                              eval_users=self.eval_users, sample_users=self.sample_users,
                              split_seed=self.split_seed if self.split_seed != self.seed else None)

    @property
    def spec(self):
        return registry.get(self.model)

    def option(self, name: str, default: Any = None) -> Any:
        """The model option `name`, or `default` when this model has no such option."""
        return self.options.get(name, default)

    def replace(self, **changes) -> RunConfig:
        """A copy with run settings and/or model options changed (either kind, by name)."""
        run, opts = split_names(self.model if "model" not in changes else changes["model"], changes)
        if "model" in changes and changes["model"] != self.model:
            return replace(self, **run, options=opts)
        return replace(self, **run, options={**self.options, **opts})

    def changed(self) -> dict:
        """What this config sets away from the defaults, by flat name (`build` takes it back):
        the run settings not at their declared default, the preset, and the model's options not at
        what its defaults and preset give. The model is always named."""
        out = {o.name: getattr(self, o.name) for o in RUN_OPTIONS if getattr(self, o.name) != o.default}
        out["model"] = self.model
        if self.preset:
            out["preset"] = self.preset
        defaults = self.spec.resolve({}, self.preset)
        return out | {k: v for k, v in self.options.items() if v != defaults.get(k)}

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def build(cls, **values) -> RunConfig:
        """From flat names, as the CLI, the Train form and sweeps give them: run settings by their
        field names, model options by their declared names."""
        run, opts = split_names(values.get("model", registry.DEFAULT_MODEL), values)
        return cls(**_absolute(run), options=opts)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping) -> RunConfig:
        """Strict: `{run settings…, "model": …, "options": {…}}`, or flat names (`build`)."""
        d = dict(d)
        if "options" in d:
            unknown = sorted(set(d) - RUN_NAMES - {"model", "preset", "options"})
            if unknown:
                raise RecvizError(f"unknown config keys {unknown}", fix=f"run settings: {sorted(RUN_NAMES)}")
            return cls(**_absolute(d))
        return cls.build(**d)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_stored(cls, d: Mapping) -> RunConfig:
        """A config as an earlier version may have stored it — every model's options flat beside
        the run settings, under older names — so every stored run still opens. Keys nobody reads
        any more are ignored; a model that no longer exists is an error."""
        d = dict(d)
        if "options" in d:
            return cls(**{k: v for k, v in d.items() if k in RUN_NAMES | {"model", "preset", "options"}})
        model = d.get("model", registry.DEFAULT_MODEL)
        run = {k: d[k] for k in RUN_NAMES if k in d}
        return cls(**run, model=model, options=registry.get(model).from_stored(d))


# every run setting, declared once on the fields above (model and preset are not form options)
RUN_OPTIONS: tuple[Option, ...] = tuple(
    replace(f.metadata["option"], name=f.name) for f in fields(RunConfig)
    if "option" in f.metadata and f.name not in ("model", "preset"))
RUN_NAMES = frozenset(o.name for o in RUN_OPTIONS)
# the settings a run's data and split are drawn from (`prepare_data`, then `prepare_split`); the
# dataset counts at its pinned version (`data_ref`), which is why data_version is not listed
DATA_FIELDS = ("dataset", "min_user", "min_item", "min_rating", "sample_users")
PINNED_FIELDS = ("data_version",)  # set when a run is created, never by a person
# what a person sets besides the data: the protocol and how the run is executed
RUN_SETTINGS = tuple(o.name for o in RUN_OPTIONS if o.name not in (*DATA_FIELDS, *PINNED_FIELDS))
SPLIT_FIELDS = (*DATA_FIELDS, "protocol", "candidates", "target", "valid", "split_seed", "eval_users")
# settings that repeat an experiment rather than change it: runs equal but for these are one
# point measured several times (the Results page averages them, with an error bar)
REPEAT_FIELDS = ("seed", "split_seed", "device", "threads")


def _absolute(values: dict) -> dict:
    """A new config's dataset path made absolute (`recviz.data.load.absolute_ref`): stored as
    typed, a relative path would be read from whatever folder a page or worker runs in. Stored
    configs (`from_stored`) keep what they hold."""
    if values.get("dataset") is None:
        return values
    from recviz.data.load import absolute_ref

    return {**values, "dataset": absolute_ref(values["dataset"])}


def link_text(config: RunConfig) -> str:
    """A config as a short text for a page's address (`?form=…`): only what it changes
    (`RunConfig.changed`), as compact JSON, so a reload or a shared link fills the form again."""
    return json.dumps(config.changed(), separators=(",", ":"), sort_keys=True)


def from_link(text: str | None) -> RunConfig | None:
    """`link_text` read back; None for no text or a malformed or out-of-range one (an edited or
    stale link is ignored, never an error)."""
    if not text:
        return None
    try:
        values = json.loads(text)
        return RunConfig.build(**values) if isinstance(values, dict) else None
    except (ValueError, TypeError, RecvizError):
        return None


def run_option(name: str) -> Option:
    for o in RUN_OPTIONS:
        if o.name == name:
            return o
    raise KeyError(name)


def split_names(model: str, values: Mapping) -> tuple[dict, dict]:
    """Flat names → (run settings incl. model/preset, model options); an unknown name is an error
    naming the model and what it takes."""
    spec = registry.get(model)
    run, opts = {}, {}
    for k, v in values.items():
        if k in RUN_NAMES or k in ("model", "preset"):
            run[k] = v
        elif spec.has(k):
            opts[k] = v
        else:
            spec.resolve({k: v})  # raises: renamed, or not an option of this model
    return run, opts
