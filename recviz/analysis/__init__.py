"""What the app's pages compute, as plain functions a test can check.

Everything here takes numpy arrays, pandas frames or an `Interactions` table and returns frames,
arrays or numbers: no Streamlit, no torch (pages import this on every rerun and must stay fast).

- `dataset`: the Data page (rating histogram, long tail, behaviour mix, one user's history).
- `compare`: runs and their top-N lists (results table, grouped metrics, sweeps, overlap between
  two runs) and the protocol label shown next to metrics.
- `progress`: the run the Train page watches, learning curves in long form, progress text.
- `embeddings`: a 2-D PCA map of item embeddings with one user's items highlighted.
- `estimate`: the memory and time a full-ranking evaluation will take, before it is started.

Figures for these frames are built by `recviz.charts`.
"""

from recviz.analysis import compare, dataset, embeddings, estimate, progress

__all__ = ["compare", "dataset", "embeddings", "estimate", "progress"]
