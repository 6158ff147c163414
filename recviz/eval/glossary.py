"""What the numbers mean, in the words shown next to them: every "What do these numbers mean?"
popover in the app reads its text from here, so the pages cannot explain a metric two ways.

Each entry is Markdown. The definitions follow `recviz.eval.metrics` and `recviz.data.split`:
change a definition there and here together.
"""

from __future__ import annotations

from recviz.eval import beyond
from recviz.eval.significance import ALPHA, CONFIDENCE, RESAMPLES

TERMS: dict[str, str] = {
    "HR@K": (
        "**Hit ratio at K** — the share of test users for whom the model put a held-out item among its "
        "top K. Under leave-one-out each user has one held-out item, ranked against the sampled "
        "candidates; under the ratio split, a hit is any of the user's test items in the top K of all "
        "items. 1.0 is perfect; a random ranking of 100 candidates scores K/101."),
    "NDCG@K": (
        "**Normalised discounted cumulative gain at K** — like HR@K, but a hit counts more the higher "
        "it is ranked: 1 at rank 1, 1/log2(3) ≈ 0.63 at rank 2, 1/log2(r+1) at rank r, 0 below K; "
        "divided by the best score possible for that user, then averaged over users."),
    "protocol": (
        "**Protocol** — how a user's interactions are split and how the model is judged. "
        "*Leave-one-out* (the NCF and DMF papers' protocol): each user's latest interaction is the "
        "test item and the one before it (or, with *random validation*, an earlier one drawn at "
        "random, as the papers did) the validation item; the held-out item is ranked against N items "
        "the user never touched (100 by default). *80/10/10 ratio split* (EINMF's): the user–item "
        "pairs are split at random into 80% train, 10% validation and 10% test, and the model ranks "
        "*every* item the user has not trained on. Numbers from different protocols are not "
        "comparable — the sampled one is often 5–10× larger — so every number here carries its "
        "protocol."),
    "best epoch": (
        "**Test metrics at the best validation epoch** — after every epoch the model is scored on the "
        "validation items; the weights of the epoch with the best validation NDCG@10 are kept (a star "
        "marks it on the learning curves), and only those are scored once on the test items. Test "
        "items never choose anything, so the test numbers are an honest estimate."),
    "seeds": (
        "**Mean ± standard deviation over seeds** — runs that differ only in their seed (which draws "
        "the random parts of the split — sampled candidates, a ratio split — the initial weights and "
        "the negatives) measure one setting several times; so do runs that differ only in their "
        "thread count or device. A bar or sweep point drawn from them is their mean; its error bar is "
        "their sample standard deviation, and hovering says over how many runs. On ml-100k the seed "
        "alone moves HR@10 by 0.01–0.02, as much as many differences between settings: two settings "
        "whose bars overlap are not shown to differ."),
}


# the words of the understanding views (explained where those views are, not with every number)
VIEWS: dict[str, str] = {
    "paired comparison": (
        "**Paired comparison** — two runs judged on the same split ranked the same users' same held-out "
        "items among the same candidates, so each user's difference A − B is a fair pair and the spread "
        "between users (some are simply easy) cancels out. The *Wilcoxon signed-rank test* asks whether A "
        "is ahead on more, and larger, differences than B (users with no difference are left out); the "
        "*paired t-test* asks whether the mean difference is 0; the *bootstrap interval* resamples the users "
        f"{RESAMPLES} times (seeded, so it is the same every time) for a {CONFIDENCE:.0%} interval of the "
        f"mean difference. A difference is called shown when the Wilcoxon p is below {ALPHA:g}. Runs on "
        "different splits — another seed draws other candidates — are not paired and are not compared; runs repeated over seeds are "
        "compared seed by seed, each user's value the mean over the seeds."),
    "beyond accuracy": (
        "**Beyond accuracy** — what the lists hold, whatever the held-out items: "
        + "; ".join(f"*{name}*: {words}" for name, words in beyond.METRICS.items())
        + ". Popularity counts the distinct users who have an item in train. Computed from each run's stored "
          "top list of every test user."),
}


def explain(*terms: str) -> str:
    """The Markdown for `terms` (every entry of TERMS when none are named), one paragraph each."""
    known = {**TERMS, **VIEWS}
    unknown = [t for t in terms if t not in known]
    if unknown:
        raise KeyError(f"no glossary entry for {unknown[0]!r} (there are {', '.join(known)})")
    return "\n\n".join(known[t] for t in (terms or TERMS))
