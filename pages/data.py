"""Data: pick a catalog dataset or upload one, then look at it."""

from pathlib import Path

import streamlit as st

from pages.ui import frame
from pages.ui.datasets import (DEFAULT_DATASET, choose_dataset, clear_data_cache, data_overview, load_data_or_error,
                               uploaded)
from pages.ui.errors import show_error
from pages.ui.runs import run_store
from recviz import charts
from recviz.analysis import dataset as ds
from recviz.data import catalog, item_info, saved
from recviz.data.formats.table import preview
from recviz.data.load import save_named
from recviz.data.validate import DEDUP_LABEL, DEDUP_RULES
from recviz.errors import RecvizError

TITLE_TYPES = ["csv", "tsv", "txt", "dat", "item"]

frame.run_in_app()  # Streamlit may run this file alone (legacy pages/ layout): then the frame runs it
st.title("Data")
catalog_tab, upload_tab = st.tabs(["Catalog", "Upload a file"])

# ---- catalog ----------------------------------------------------------------------------------------
with catalog_tab:
    rows = catalog.describe()
    st.dataframe([{k: r[k] for k in ("name", "kind", "cached", "description")} for r in rows],
                 hide_index=True)
    names = [r["name"] for r in rows]
    name = st.selectbox("Catalog dataset", names, index=names.index(DEFAULT_DATASET), key="catalog_name", required=True)
    entry = catalog.get(name)
    if catalog.cached_path(name) is not None or entry.generated:
        if st.button(f"Use {name}", key="use_catalog", type="primary"):
            st.session_state["dataset"] = name
    elif entry.downloadable:
        if st.button(f"Download {name}", key="download"):
            bar = st.progress(0.0, text=f"Downloading {name}…")

            def progress(done: int, total: int | None) -> None:
                bar.progress(min(1.0, done / total) if total else 0.0, text=f"{done / 1e6:.1f} MB")

            try:
                catalog.download(name, progress=progress)
                st.session_state["dataset"] = name
                st.success(f"{name} is ready.")
            except RecvizError as err:
                bar.empty()  # a bar left above the error would say the download is still going
                show_error(err)
    else:
        st.info(entry.instructions)

def _upload_form(upload, incoming: Path) -> None:
    """Preview, column mapping and save of one uploaded file; errors name the file as uploaded."""
    is_zip = incoming.suffix.lower() == ".zip"
    mapping, delimiter, previewed = None, None, True
    if not is_zip:
        delim_choice = st.selectbox("Delimiter", ["auto", ",", "tab", ";", "|", "::"], key="delimiter", required=True)
        try:
            pv = preview(incoming, None if delim_choice == "auto" else delim_choice)
        except RecvizError as err:
            show_error(err, {str(incoming): upload.name})
            pv, previewed = None, False
        if pv is not None:
            st.caption(f"First lines · delimiter {pv.delimiter!r} · "
                       f"{'header found' if pv.header else 'no header'}")
            st.dataframe(pv.rows.head(10), hide_index=True)
            columns = ["—"] + list(pv.rows.columns)
            cols = st.columns(5)
            mapping = {}
            for col, role in zip(cols, ("user", "item", "rating", "timestamp", "behavior")):
                guess = pv.roles.get(role)
                pick = col.selectbox(role, columns, index=columns.index(guess) if guess in columns else 0,
                                     key=f"map_{role}", required=True)
                if pick != "—":
                    mapping[role] = pick if pv.header else int(pick)
            delimiter = pv.delimiter
    left, mid, right = st.columns(3)
    min_user = left.number_input("k-core: min interactions per user", 0, 1000, 0, key="kcore_user")
    min_item = mid.number_input("k-core: min interactions per item", 0, 1000, 0, key="kcore_item")
    dedup = right.selectbox(DEDUP_LABEL, list(DEDUP_RULES), key="dedup",
                            help="error: refuse the file; last/first: keep the latest/earliest row", required=True)
    stem = Path(upload.name).stem.split(".")[0].encode()[:100].decode(errors="ignore")  # a name is ≤ 100 bytes
    save_as = st.text_input("Save as", value=stem, key="save_as")
    taken = saved.versions(save_as.strip()) if save_as.strip() else []
    replace = False
    if taken:
        last = taken[-1]
        replace = st.checkbox(f"'{save_as}' exists (v{last['version']}, {last['interactions']:,} interactions): "
                              f"save this as v{last['version'] + 1}", key="replace",
                              help="Nothing is overwritten: runs trained on earlier versions keep reading them.")
    titles = st.file_uploader("Item titles and genres (optional)", type=TITLE_TYPES, key="titles_upload",
                              help=f"Without them items show as 'item 2492'. {item_info.HOW.capitalize()}. "
                                   "A MovieLens zip brings its own.")
    if st.button("Validate and save", type="primary", key="save_upload", disabled=not previewed or (bool(taken) and not replace),
                 help=None if previewed else "fix the problem above first"):
        with uploaded(titles) as titles_path:
            try:
                options = {} if is_zip else {"mapping": mapping or None, "delimiter": delimiter}
                data = save_named(save_as, str(incoming), min_user=int(min_user), min_item=int(min_item),
                                  dedup=None if is_zip and dedup == "error" else dedup, replace=replace,
                                  titles=str(titles_path) if titles_path else None, **options)
                st.session_state["dataset"] = save_as
                clear_data_cache()
                named = data.meta.get("titles")
                version = data.meta["version"]
                if taken and version <= taken[-1]["version"]:  # the same content: saving returned that version
                    st.info(f"'{save_as}' v{version} already holds exactly this content, so nothing new was saved: "
                            f"runs use v{version}.")
                else:
                    st.success(f"Saved '{save_as}' v{version}: {data.n_users:,} users, {data.n_items:,} items, "
                               f"{len(data):,} interactions"
                               + (f"; {named['matched']:,} items have a title." if named else "."))
            except RecvizError as err:
                show_error(err, {str(incoming): upload.name,
                                        **({str(titles_path): titles.name} if titles_path else {})})


# ---- upload -----------------------------------------------------------------------------------------
with upload_tab:
    upload = st.file_uploader("Ratings, implicit feedback or behaviour log",
                              type=["csv", "tsv", "txt", "dat", "data", "inter", "zip"], key="upload")
    if upload is not None:
        with uploaded(upload) as incoming:
            _upload_form(upload, incoming)

# ---- the current dataset ------------------------------------------------------------------------------
st.divider()
ref = choose_dataset("Look at", key="data_page_dataset")
data = load_data_or_error(ref)
if data is not None:
    view = data_overview(ref, data)
    stats = view.stats
    a, b, c, d = st.columns(4)
    a.metric("Users", f"{stats['users']:,}")
    b.metric("Items", f"{stats['items']:,}")
    c.metric("Interactions", f"{stats['interactions']:,}")
    d.metric("Density", f"{stats['density']:.2%}")
    left, right = st.columns(2)
    if view.ratings is not None:
        left.plotly_chart(charts.rating_histogram(view.ratings), key="rating_hist")
    if view.behaviors is not None:
        left.plotly_chart(charts.behavior_mix(view.behaviors), key="behavior_mix")
    right.plotly_chart(charts.long_tail(view.users, view.items), key="long_tail")
    with st.expander("Summary"):
        st.dataframe(view.summary, hide_index=True)
    versions = saved.versions(saved.split_ref(ref)[0])
    if versions:
        runs = [r for r in run_store().list(limit=100_000) if saved.split_ref(r.dataset)[0] == saved.split_ref(ref)[0]]
        st.markdown(f"**Versions of '{saved.split_ref(ref)[0]}'** — saving under this name again adds a "
                    "version; each run keeps reading the one it was trained on.")
        st.dataframe(ds.versions_table(versions, runs), hide_index=True, key="versions")
        name = saved.split_ref(ref)[0]
        with st.expander(f"Item titles and genres for '{name}'"):
            st.caption("Titles are matched by item id and apply to every version, and to the runs trained on "
                       f"them, at once. {item_info.HOW.capitalize()}.")
            later = st.file_uploader("Titles file", type=TITLE_TYPES, key="titles_later")
            if st.button("Add the titles", key="add_titles", disabled=later is None):
                with uploaded(later) as path:
                    try:
                        got = saved.add_titles(name, str(path))
                        clear_data_cache()
                        st.success(f"{got['matched']:,} of the {got['items']:,} items of '{name}' have a title now.")
                    except RecvizError as err:
                        show_error(err, {str(path): later.name})
