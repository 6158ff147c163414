"""Issue 25's memory bombs, measured: small stored files that once took gigabytes to refuse are now
refused within a bounded peak memory. Each case is loaded in a child process, and its peak resident
memory (`tests.helpers.peak_child_memory`) is compared with a child that only imports the same modules:
before the bounds, the Parquet file peaked at 2.7 GB and the npz bombs at 2–4 GB."""

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.helpers import peak_child_memory

pytestmark = pytest.mark.slow  # writes a 2 GiB-unpacking bomb and an 86 MB Parquet file (~1 min)

IMPORTS = "import recviz.data.load, recviz.experiments.artifacts, pyarrow.parquet\nfrom recviz.errors import RecvizError\n"
EXTRA_MB = 100  # above the imports alone: the bounds refuse each bomb from its directory, header or size


def peak_mb(body: str) -> tuple[float, str]:
    """Run IMPORTS + `body` in a child; its peak RSS in MB and what it printed."""
    peak, out = peak_child_memory(IMPORTS + body)
    return peak / 2**20, out


def assert_refused_in_bounded_memory(call: str, says: str, baseline: float) -> None:
    """`call` in a child is refused with a message holding `says`, within EXTRA_MB of the imports alone."""
    peak, out = peak_mb(refused(call))
    assert "REFUSED" in out and says in out, out
    print(f"peak {peak:.0f} MB (the imports alone: {baseline:.0f} MB)")
    assert peak < baseline + EXTRA_MB, (peak, baseline)


def refused(call: str) -> str:
    return f"try:\n    {call}\n    print('LOADED')\nexcept RecvizError as err:\n    print('REFUSED', err)\n"


@pytest.fixture(scope="module")
def baseline():
    return peak_mb("")[0]


def _bomb_npz(path, member, dtype, n_values):
    """An .npz whose one member holds n_values zeros: a header telling the truth, deflated ~1000×."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                  "shape": (n_values,)})
    chunk = bytes(16 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        with zf.open(member, "w", force_zip64=True) as fh:
            fh.write(header.getvalue())
            left = n_values * np.dtype(dtype).itemsize
            while left > 0:
                fh.write(chunk[:left])
                left -= len(chunk)


def _run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "meta.json").write_text(json.dumps({"n_users": 10, "n_items": 10}))
    return run


def test_a_topn_zip_bomb_is_refused_in_bounded_memory(tmp_path, baseline):
    run = _run_dir(tmp_path)
    _bomb_npz(run / "topn.npz", "items.npy", "<i8", 256 << 20)  # 2 GiB unpacked
    assert (run / "topn.npz").stat().st_size < 3_000_000
    assert_refused_in_bounded_memory(f"recviz.experiments.artifacts.load_topn({str(run)!r})", "topn.npz is damaged",
                                     baseline)


def test_an_ids_zip_bomb_is_refused_in_bounded_memory(tmp_path, baseline):
    run = _run_dir(tmp_path)
    _bomb_npz(run / "ids.npz", "user_ids.npy", "<i8", 512 << 20)  # 4 GiB unpacked
    assert_refused_in_bounded_memory(f"recviz.experiments.artifacts.load_ids({str(run)!r})", "ids.npz is damaged",
                                     baseline)


def test_a_sparse_meta_json_is_refused_unread(tmp_path, baseline):
    run = tmp_path / "run"
    run.mkdir()
    with open(run / "meta.json", "wb") as fh:  # 1.6 GB on paper, nothing on disk
        fh.truncate(1_600_000_000)
    assert_refused_in_bounded_memory(f"recviz.experiments.artifacts.load_meta({str(run)!r})", "meta.json is damaged",
                                     baseline)


def test_a_parquet_file_of_200000_one_row_groups_is_refused_in_bounded_memory(tmp_path, baseline):
    path = tmp_path / "groups.parquet"
    # written by a child: the writer itself takes ~0.9 GB for this many row groups
    subprocess.run([sys.executable, "-c", "import pyarrow as pa, pyarrow.parquet as pq, sys; n = 200_000; "
                    "pq.write_table(pa.table({'user': range(n), 'item': range(n)}), sys.argv[1], row_group_size=1)",
                    str(path)], check=True)
    assert path.stat().st_size > 50_000_000
    assert_refused_in_bounded_memory(f"recviz.data.load.load({str(path)!r})", "Parquet footer", baseline)
