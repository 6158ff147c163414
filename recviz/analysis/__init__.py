"""What the app's pages compute, as plain functions a test can check.

Everything here takes numpy arrays, pandas frames or an `Interactions` table and returns frames,
arrays or numbers: no Streamlit, no torch (pages import this on every rerun and must stay fast).

- `dataset`: the Data page (rating histogram, long tail, behaviour mix; `overview` holds them all).
- `downsample`: which points of a long curve a chart draws, so figures stay bounded at any size.
- `history`: one user's rows, a page at a time, with their part of the split (`RowIndex` built once).
- `lookup`: finding a user or item by its raw id or a prefix of it (`IdIndex`), never listing them all.
- `results`: comparing runs by their numbers (results table, grouped metrics, sweeps, run labels).
- `toplists`: comparing two runs' top-N lists (overlap, where they disagree, side by side).
- `progress`: the run the Train page watches, learning curves in long form, progress text.
- `embeddings`: a 2-D PCA map of item embeddings with one user's items highlighted.
- `estimate`: the memory and time a full-ranking evaluation will take, before it is started.
- `peruser`: a stored run's per-user results (or why a view is not available for it).
- `paired`: two runs (or seed groups) on the same split compared user by user: tests, CI, wins.
- `exposure`: beyond-accuracy metrics of runs (coverage, popularity, Gini, novelty, long tail).
- `why`: for one user's top-N, the history items that most support each (ItemKNN neighbours, closest in item space).
- `slices`: a metric by user activity or held-out item popularity; popularity bias by users' taste.

Figures for these frames are built by `recviz.charts`.
"""

from recviz.analysis import (dataset, downsample, embeddings, estimate, exposure, history, lookup, paired, peruser,
                             progress, results, slices, toplists, why)

__all__ = ["dataset", "downsample", "embeddings", "estimate", "exposure", "history", "lookup", "paired", "peruser",
           "progress", "results", "slices", "toplists", "why"]
