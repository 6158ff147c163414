"""The catalog: lookup, refs, offline messages and downloads through a local fake server."""

import hashlib
import http.server
import io
import socket
import threading
import urllib.error
import zipfile
from functools import partial

import numpy as np
import pytest

from recviz.data import catalog
from recviz.data.catalog import CatalogEntry, RemoteFile
from recviz.data.synthetic import generate
from recviz.errors import DatasetUnavailable, RecvizError


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(catalog.urllib.request, "urlopen", refuse)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """An http.server on 127.0.0.1 serving tmp_path/served; yields (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def small_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("tiny/ratings.csv", "user,item,rating\n" + "".join(
            f"u{u},i{i},{(u + i) % 5 + 1}\n" for u in range(20) for i in range(u % 7, 30, 3)))
    return buf.getvalue()


def register(monkeypatch, name, url, data=None, checksum="auto", filename="tiny.zip"):
    if checksum == "auto":
        checksum = "md5:" + hashlib.md5(data).hexdigest()
    entry = CatalogEntry(name, "a test dataset", "explicit", (RemoteFile(filename, url, checksum),))
    monkeypatch.setitem(catalog._ENTRIES, name, entry)
    return entry


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tiny.zip"


# ---- lookup and refs --------------------------------------------------------------------------
def test_entries_cover_the_catalog():
    names = [e.name for e in catalog.entries()]
    for name in ("ml-100k", "ml-1m", "pinterest-20", "ml-1m-ncf", "taobao-userbehavior",
                 "synthetic", "synthetic-implicit", "synthetic-multi"):
        assert name in names
    ml = catalog.get("ml-100k")
    assert ml.files[0].checksum == "md5:0e33842e24a9c977be4e0107933c0723"
    assert ml.kind == "explicit" and "Harper" in ml.citation
    assert len(catalog.get("pinterest-20").files) == 3


def test_unknown_name_lists_known_names_and_paths():
    with pytest.raises(DatasetUnavailable) as err:
        catalog.get("ml100k")
    msg = str(err.value)
    assert "ml-100k" in msg and "synthetic" in msg and "path" in msg and "did you mean" in msg


def test_load_named_synthetic_refs():
    d = catalog.load_named("synthetic:users=50,items=60,interactions=1000,seed=2")
    ref = generate(50, 60, 1000, seed=2)
    assert d.n_users == 50 and np.array_equal(d.item, ref.item) and d.rating is not None
    assert catalog.load_named("synthetic-implicit:users=40,items=40,interactions=400").rating is None
    multi = catalog.load_named("synthetic-multi:users=40,items=40,interactions=400")
    assert multi.behaviors == ("click", "cart", "fav", "buy")
    assert catalog.load_named("synthetic").n_users == 600


def test_bad_refs_explain_themselves():
    with pytest.raises(RecvizError, match="valid keys: users, items, interactions"):
        catalog.load_named("synthetic:colour=red")
    with pytest.raises(RecvizError, match="takes no options"):
        catalog.load_named("ml-100k:seed=1")
    with pytest.raises(RecvizError, match="more than half"):
        catalog.load_named("synthetic:users=10,items=20,interactions=150")


# ---- offline ----------------------------------------------------------------------------------
def test_offline_message_names_target_path_and_url(no_network, home):
    with pytest.raises(DatasetUnavailable) as err:
        catalog.load_named("ml-100k")
    msg = str(err.value)
    assert str(home / "datasets" / "ml-100k" / "ml-100k.zip") in msg
    assert "https://files.grouplens.org/datasets/movielens/ml-100k.zip" in msg
    assert "upload" in msg and "Traceback" not in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_offline_multi_file_message_lists_every_file(no_network, home):
    with pytest.raises(DatasetUnavailable) as err:
        catalog.download("pinterest-20")
    msg = str(err.value)
    for ext in (".train.rating", ".test.rating", ".test.negative"):
        assert str(home / "datasets" / "pinterest-20" / f"pinterest-20{ext}") in msg
        assert f"master/Data/pinterest-20{ext}" in msg


def test_no_download_when_not_asked(no_network):
    with pytest.raises(DatasetUnavailable, match="downloading was not requested"):
        catalog.load_named("ml-1m", download_missing=False)


def test_manual_dataset_says_where_to_put_the_file(home):
    with pytest.raises(DatasetUnavailable) as err:
        catalog.load_named("taobao-userbehavior")
    msg = str(err.value)
    assert str(home / "datasets" / "taobao-userbehavior" / "UserBehavior.csv") in msg
    assert "Tianchi" in msg and "upload" in msg
    path = home / "datasets" / "taobao-userbehavior" / "UserBehavior.csv"
    path.parent.mkdir(parents=True)
    path.write_text("1,2,3,pv,1511544070\n")
    assert catalog.cached_path("taobao-userbehavior") == path


# ---- downloads --------------------------------------------------------------------------------
def test_download_from_fake_server_with_progress_and_checksum(server, monkeypatch, home):
    root, base = server
    data = small_zip()
    (root / "tiny.zip").write_bytes(data)
    register(monkeypatch, "fake", f"{base}/tiny.zip", data)
    calls = []
    path = catalog.download("fake", progress=lambda done, total: calls.append((done, total)))
    assert path == home / "datasets" / "fake" / "tiny.zip" and path.read_bytes() == data
    assert calls[-1] == (len(data), len(data)) and len(calls) >= 2
    assert not list(path.parent.glob("*.part"))
    assert (path.parent / ".verified").exists()
    assert catalog.cached_path("fake") == path
    row = next(r for r in catalog.describe() if r["name"] == "fake")
    assert row["cached"] and row["size_bytes"] == len(data) and row["location"] == str(path)


def test_download_from_file_url(tmp_path, monkeypatch):
    src = tmp_path / "tiny.zip"
    src.write_bytes(small_zip())
    register(monkeypatch, "fake", src.as_uri(), checksum=None)
    calls = []
    path = catalog.download("fake", progress=lambda *a: calls.append(a))
    assert path.read_bytes() == src.read_bytes() and calls


def test_checksum_mismatch_deletes_the_part_file(server, monkeypatch):
    root, base = server
    (root / "tiny.zip").write_bytes(b"not the published bytes")
    entry = register(monkeypatch, "fake", f"{base}/tiny.zip", b"the published bytes")
    with pytest.raises(DatasetUnavailable) as err:
        catalog.download("fake")
    msg = str(err.value)
    assert "md5" in msg and "deleted" in msg and f"{base}/tiny.zip" in msg
    assert str(entry.cache_dir / "tiny.zip") in msg
    assert list(entry.cache_dir.iterdir()) == []  # no target, no .part


def test_good_cache_survives_failed_redownload(server, monkeypatch):
    root, base = server
    data = small_zip()
    (root / "tiny.zip").write_bytes(data)
    register(monkeypatch, "fake", f"{base}/tiny.zip", data)
    path = catalog.download("fake")
    # 1. network down while re-downloading
    register(monkeypatch, "fake", closed_port_url(), data)
    with pytest.raises(DatasetUnavailable, match="unchanged"):
        catalog.download("fake", force=True)
    # 2. the server now returns something else (mismatch)
    (root / "tiny.zip").write_bytes(b"garbage")
    register(monkeypatch, "fake", f"{base}/tiny.zip", data)
    with pytest.raises(DatasetUnavailable, match="md5"):
        catalog.download("fake", force=True)
    # 3. a 404
    register(monkeypatch, "fake", f"{base}/missing.zip", data)
    with pytest.raises(DatasetUnavailable, match="HTTP 404"):
        catalog.download("fake", force=True)
    assert path.read_bytes() == data and catalog.cached_path("fake") == path
    assert not list(path.parent.glob("*.part"))
    assert catalog.download("fake") == path  # cached: no network needed


def test_verification_happens_once_and_detects_a_wrong_file(monkeypatch, home):
    data = small_zip()
    entry = register(monkeypatch, "fake", "http://127.0.0.1:9/tiny.zip", data)
    entry.cache_dir.mkdir(parents=True)
    (entry.cache_dir / "tiny.zip").write_bytes(data)  # placed by hand
    hashed = []
    real = catalog._hash_file
    monkeypatch.setattr(catalog, "_hash_file", lambda p, a: hashed.append(p) or real(p, a))
    assert catalog.cached_path("fake") is not None and len(hashed) == 1
    assert catalog.cached_path("fake") is not None and len(hashed) == 1  # marker: no re-hash
    (entry.cache_dir / "tiny.zip").write_bytes(data[:-1] + b"X")  # changed → verified again
    assert catalog.cached_path("fake") is None and len(hashed) == 2


def test_load_named_reads_a_downloaded_dataset(server, monkeypatch):
    pytest.importorskip("recviz.data.formats.detect")
    root, base = server
    data = small_zip()
    (root / "tiny.zip").write_bytes(data)
    register(monkeypatch, "fake", f"{base}/tiny.zip", data)
    inter = catalog.load_named("fake")
    assert inter.name == "fake" and inter.n_users == 20 and inter.meta["catalog"] == "fake"


def test_describe_rows():
    rows = {r["name"]: r for r in catalog.describe()}
    assert rows["synthetic"]["cached"] and rows["synthetic"]["kind"] == "explicit"
    assert rows["synthetic-multi"]["kind"] == "multi-behaviour"
    assert not rows["ml-100k"]["cached"] and rows["ml-100k"]["location"].endswith("ml-100k.zip")
    assert rows["taobao-userbehavior"]["source"] == "manual"
    for r in rows.values():
        assert {"name", "kind", "description", "cached", "location", "size_bytes"} <= set(r)


def test_a_saved_name_never_hides_a_catalog_name_or_silently_loses_to_a_path(tmp_path, monkeypatch):
    import pytest

    from recviz.data.load import load, save_named
    from recviz.errors import DataError

    csv = tmp_path / "r.csv"
    csv.write_text("user,item,rating\n" + "".join(f"u{k % 7},i{k},{1 + k % 5}\n" for k in range(60)))
    with pytest.raises(DataError, match="catalog dataset's name"):
        save_named("ml-100k", str(csv))
    with pytest.raises(DataError, match="not a usable dataset name"):
        save_named("x" * 300, str(csv))
    save_named("assets", str(csv))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "assets").mkdir()  # a folder of the same name where the command runs
    with pytest.raises(DataError, match="both a path here and a saved dataset") as info:
        load("assets")
    assert "./assets" in str(info.value)
