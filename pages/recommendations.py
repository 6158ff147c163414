"""Recommendations: one user, one or two runs — what the user did, what was held out, what the
model recommends, and where those items sit in the model's embedding space."""

import numpy as np
import streamlit as st

from pages.ui import frame
from pages.ui.datasets import load_data
from pages.ui.glossary import explain
from pages.ui.pickers import pager, search_id
from pages.ui.runs import run_store
from recviz import charts
from recviz.analysis import dataset as ds
from recviz.analysis import embeddings, lookup, runview, toplists, why
from recviz.experiments import artifacts
from recviz.experiments import topn as lists
from recviz.experiments.experiment import prepare_split

frame.run_in_app()  # Streamlit may run this file alone (legacy pages/ layout): then the frame runs it
st.title("Recommendations")
store = run_store()
done = store.list(status="done", limit=500)
for r in store.list(status="unreadable", limit=500):  # not listed below: no config to score or show with
    st.caption(f"Run #{r.id} ({r.model}) is {r.error}")
if not done:
    st.info("No finished runs yet — train one on the Train page first.")
    st.stop()

labels = {f"#{r.id} · {r.model} on {r.dataset}": r for r in done}
default = next((i for i, r in enumerate(done) if r.id == st.session_state.get("active_run")), 0)
run = labels[st.selectbox("Run", list(labels), index=default, key="rec_run", required=True)]


@st.cache_resource(max_entries=16, show_spinner="Loading the run…")
def load_run(db: str, run_id: int):
    """Split, top-N lists, per-user test results and item map of a run (cached per store)."""
    run = store.get(run_id)
    run_dir = artifacts.run_files(store, run)
    c = run.config
    split = prepare_split(c, load_data(c.data_ref, c.min_user, c.min_item, c.min_rating, c.sample_users))
    return split, artifacts.load_topn(run_dir), artifacts.load_eval(run_dir), artifacts.load_item_coords(run_dir)


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def load_model(db: str, run_id: int):
    """The run's trained model, from its stored weights (for "Why these items")."""
    return artifacts.load_model(artifacts.run_files(store, store.get(run_id)))[0]


@st.cache_resource(max_entries=4, show_spinner="Indexing the run's users…")
def run_view(db: str, run_id: int) -> runview.RunView:
    """Built once per run, so that a rerun costs O(one user's rows) (`analysis.runview`)."""
    return runview.RunView.build(load_run(db, run_id)[0])


@st.cache_resource(max_entries=64, show_spinner="Making this user's list from the run's model…")
def user_list(db: str, run_id: int, user: int):
    """One user's (items, scores): stored with the run, or made now for that user alone."""
    return run_view(db, run_id).user_list(load_run(db, run_id)[1], user, store.get(run_id).config.seed,
                                          lambda: load_model(db, run_id))


split, topn, test_eval, coords = load_run(str(store.path), run.id)
top_n = topn["items"].shape[1]
data = split.data
view = run_view(str(store.path), run.id)
user_index, titles, test_users = view.users, view.titles, view.test_users
protocol = run.config.protocol_detail

# ---- pick a user -----------------------------------------------------------------------------------
others = {k: r for k, r in labels.items() if r.id != run.id and r.dataset == run.dataset}
mode = st.radio("User", ["search by id", "random", "where two runs disagree most"], horizontal=True, key="user_mode")
other = None
if others:
    other = others[st.selectbox("Compare with", list(others), key="other_run", required=True)]
    other_lists = load_run(str(store.path), other.id)[1]
if mode == "search by id":
    # one field per dataset: an id typed for another run's data never lingers here
    user = search_id("Raw user id", user_index, key=f"user_raw.{run.dataset}", default=str(data.user_ids[test_users[0]]),
                     where=run.dataset, suggestions=test_users, suggestions_label="Users of this run's test set (the first "
                     f"{min(len(test_users), lookup.SHOWN)})", suggestions_key=f"user_pick.{run.dataset}")
    if user is None:
        st.stop()
elif mode == "random":
    if st.button("Another user", key="random_user") or "random_user_pick" not in st.session_state:
        st.session_state["random_user_pick"] = int(np.random.default_rng().choice(test_users))
    user = st.session_state["random_user_pick"]
else:
    if other is None:
        st.info("Train a second model on this dataset to compare.")
        st.stop()
    common, mine, theirs = lists.both(topn, other_lists)  # the users whose lists both runs stored
    worst = toplists.disagreement_users(mine, theirs, k=10, n=20)
    overlaps = dict(zip(common[worst].tolist(), toplists.overlap(mine[worst], theirs[worst])))
    user = int(st.selectbox("Users where the runs disagree most", list(overlaps), key="disagree_user",
                            format_func=lambda u: f"{data.user_ids[u]} (overlap {overlaps[u]:.0%})", required=True))
    st.caption(f"Among the {len(common):,} users whose lists both runs stored (#{run.id}: "
               f"{len(topn['users']):,}, #{other.id}: {len(other_lists['users']):,}).")

# ---- what the user did, what was held out --------------------------------------------------------------
held = view.held(user)
st.subheader(f"User {data.user_ids[user]}")
left, right = st.columns(2)
with left:
    n_rows = view.n_rows(user)
    st.markdown(f"**History** ({n_rows:,} interactions, oldest first)")
    where = pager(n_rows, key=f"history_page.{run.id}.{user}", noun="interactions")
    shown = view.history_page(user, where.page, where.size)[0]
    st.dataframe(shown, hide_index=True, height=320, key="history")
with right:
    st.markdown("**Held out for test**")
    held_at = pager(len(held), key=f"held_page.{run.id}.{user}", noun="held-out interactions")  # ratio: 10 % of a user
    st.dataframe(held.iloc[held_at.start:held_at.stop], hide_index=True, key="held_out")
    if test_eval is not None and user in test_eval["users"]:
        k = int(np.flatnonzero(test_eval["users"] == user)[0])
        if "rank" in test_eval:
            rank = test_eval["rank"][k]
            st.metric(f"Rank of the held-out item · {protocol}", f"{rank:.0f}",
                      help="Where the held-out test item ranks among the items it was scored against (its "
                           "sampled candidates, or every unseen item under full ranking). The list below shows "
                           f"only the stored top {top_n}, so a rank beyond that is not in it.")
        st.caption(" · ".join(f"{m} {test_eval[m][k]:.3f}" for m in ("HR@10", "NDCG@10") if m in test_eval))
        explain("HR@K", "NDCG@K", "protocol")

# ---- the list -----------------------------------------------------------------------------------------
held_items = set(view.held_items(user).tolist())
top, scores = user_list(str(store.path), run.id, user)
ok = np.isfinite(scores)
table = ds.top_list(top, scores, data.item_ids, titles, held_out=held_items)
st.subheader(f"Top {ok.sum()} for this user (train and validation items excluded)")
if other is None:
    st.dataframe(table, hide_index=True, key="top_list")
else:
    names = (f"#{run.id} {run.model}", f"#{other.id} {other.model}")
    other_top, other_scores = user_list(str(store.path), other.id, user)
    st.dataframe(toplists.side_by_side(top[None], scores[None], other_top[None], other_scores[None], 0,
                                      data.item_ids, titles, held_out=held_items, names=names,
                                      k=min(20, top.shape[0])),
                 hide_index=True, key="side_by_side")
    st.caption(f"Items by their ids in {run.dataset}. \"rank in\" is where the item sits in the other run's "
               f"stored top {top_n} (empty: not in it); held-out items: "
               f"{', '.join(titles[i] for i in held_items) or 'none'}")

# ---- why these items ------------------------------------------------------------------------------------
st.subheader("Why these items")
reasons = why.explain(load_model(str(store.path), run.id), split, user, top[ok][:why.SHOWN], k=3, titles=titles,
                      train_rows=view.train_rows(user))
st.caption(f"Top {min(why.SHOWN, ok.sum())} of #{run.id} {run.model}: {reasons.measure}")
st.dataframe(reasons.frame, hide_index=True, key="why")

# ---- embedding map ---------------------------------------------------------------------------------------
st.subheader("Item embeddings (PCA)")
if coords is None:
    st.caption(f"{run.model} has no item embeddings to map.")
else:
    train_items = view.train_items(user)
    points = embeddings.embedding_map(coords["xy"], titles, history_items=train_items,
                                      recommended_items=top[ok][:10], held_out_items=list(held_items))
    st.plotly_chart(charts.embedding_map(points, tuple(coords["explained"])), key="embedding_map")
