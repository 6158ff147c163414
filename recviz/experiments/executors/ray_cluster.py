"""The Ray cluster behind the `ray` executor: joining it (an address where nothing answers is an
error within seconds, never a hang) and what it offers (CPUs, GPUs, nodes — noted whenever a driver
joins it, for the sidebar). How runs are executed as Ray tasks is `recviz.experiments.executors.ray`.

Ray is optional (`pip install -e ".[ray]"`); nothing here imports it until a cluster is joined.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

from recviz.errors import RecvizError
from recviz.files import read_json, write_json
from recviz.experiments.executors.base import machine

ADDRESS_HELP = ("the cluster's HOST:PORT; auto (default): RAY_ADDRESS or a cluster running on this machine; "
                "local: start one in the process that drives the runs")
INSTALL = 'pip install -e ".[ray]"'
CONNECT_TIMEOUT_S = 5.0  # a cluster address must answer a TCP connect within this
SEEN = "ray-cluster.json"  # in the data directory: what the cluster offered when last joined
PROBE_TIMEOUT_S = 60.0  # `probe` gives up on a cluster that has not let it join by then
_joined: str | None = None  # the address this process joined (`connect`)


def require_ray():
    try:
        import ray
    except ImportError:
        raise RecvizError("the ray executor needs Ray, which is not installed", fix=f"install it: {INSTALL}") from None
    return ray


def connect(address: str = "auto"):
    """Join the Ray cluster at `address` (host:port; "auto": `RAY_ADDRESS` or a cluster running on
    this machine; "local": start one in this process). Returns the `ray` module. An address where
    nothing answers is a RecvizError within `CONNECT_TIMEOUT_S`, never a hang (Ray itself would
    keep retrying for minutes)."""
    global _joined
    ray = require_ray()
    if ray.is_initialized() and _joined == address:
        return ray
    if ray.is_initialized():  # the app's worker, told to use another cluster between batches
        ray.shutdown()
    _joined = address
    options = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address == "local":
        # "local": a new instance even where `ray start` left a cluster file behind (/tmp/ray)
        from recviz.experiments.executors import ray_reaper

        before = ray_reaper.children() if ray_reaper.supported() else set()
        ray.init(address="local", num_cpus=os.cpu_count(), object_store_memory=256 << 20, **options)
        if ray_reaper.supported():  # its helpers end with this process, also when it is SIGKILLed
            ray_reaper.watch(ray_reaper.children() - before)
        return ray
    target = _auto_address() if address == "auto" else address
    if target is None:
        raise RecvizError("no Ray cluster found: RAY_ADDRESS is not set and no cluster runs on this machine",
                          fix="start one with `ray start --head`, give its address with --address HOST:PORT, "
                              "or use --address local to start one in this process")
    try:
        _answers(target)
    except RecvizError as err:
        if address != "auto":
            raise
        raise RecvizError(f"auto found {target} (RAY_ADDRESS, or the cluster `ray start` last started on this "
                          f"machine), but {err.problem}", fix=err.fix) from None
    try:
        ray.init(address=target, **options)
    except ConnectionError as exc:
        raise RecvizError(f"cannot join the Ray cluster at {target} ({exc})".replace("\n", " "),
                          fix="check it with `ray status --address ...`") from None
    return ray


def _auto_address() -> str | None:
    """What "auto" means, as Ray resolves it: RAY_ADDRESS, else the cluster `ray start` last
    started here (its address file under Ray's temp folder), else one running here; None when
    there is none. Resolved here so that a stale address file is a clear error within seconds
    (`_answers`), not minutes of Ray retrying a head that is gone."""
    if os.environ.get("RAY_ADDRESS", "auto") not in ("", "auto"):
        return os.environ["RAY_ADDRESS"]
    try:
        from ray._private.services import (
            get_ray_address_from_environment,  # Ray's own resolution
        )

        found = get_ray_address_from_environment("auto", None)
    except Exception:  # noqa: BLE001 — Ray found nothing to join
        return None
    return found if found and found != "auto" else None


def _answers(address: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RecvizError(f"{address!r} is not a Ray address", fix="give it as HOST:PORT, e.g. 127.0.0.1:6379")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RecvizError(f"nothing answers at {address} ({exc.strerror or exc})",
                          fix="check that the Ray head runs there (`ray status --address ...`), or use "
                              "--address local to start a cluster in this process") from None


def _resources(ray) -> dict:
    total = ray.cluster_resources()
    return {"cpus": int(total.get("CPU", 0)), "gpus": int(total.get("GPU", 0)),
            "nodes": sum(1 for node in ray.nodes() if node.get("Alive"))}


def remember_cluster(ray, address: str) -> dict:
    """Note what the cluster at `address` offers now (the app's sidebar shows it, with when)."""
    from recviz import paths

    seen = {"address": address, **_resources(ray), "at": time.time()}
    try:
        write_json(paths.home() / SEEN, seen)
    except OSError:  # a read-only data directory: only the sidebar goes without
        pass
    return seen


def last_seen(address: str) -> dict | None:
    """What the cluster at `address` offered when a run or `probe` last joined it, or None."""
    from recviz import paths

    try:
        seen = read_json(paths.home() / SEEN)
    except (OSError, ValueError):
        return None
    return seen if isinstance(seen, dict) and seen.get("address") == address else None


def probe(address: str) -> dict:
    """Join the cluster at `address` from a short-lived process, note what it offers
    (`remember_cluster`) and return that. A separate process, because joining makes a process
    a Ray driver for good (the app's server must not become one). "local" is not joined: it is a
    cluster the worker starts on this machine, so this machine's CPUs and GPUs are what it offers.
    A cluster that cannot be joined is a RecvizError saying why."""
    import subprocess

    if address == "local":
        return machine()
    require_ray()
    try:
        done = subprocess.run([sys.executable, "-m", "recviz.experiments.executors", address], capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RecvizError(f"the Ray cluster at {address} did not let a driver join within {PROBE_TIMEOUT_S:.0f} s",
                          fix="check it with `ray status`") from None
    if done.returncode != 0:  # `_probe_main` printed the RecvizError; anything else: its last line
        said = done.stderr.strip()
        said = said.partition("recviz: error: ")[2] or (said.splitlines() or [f"cannot join {address}"])[-1]
        raise RecvizError(said)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _probe_main(address: str) -> int:
    """`python -m recviz.experiments.executors ADDRESS` (`__main__`): join, note the cluster's resources, print them."""
    try:
        ray = connect(address)
    except RecvizError as err:
        print(f"recviz: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(remember_cluster(ray, address)))
    return 0
