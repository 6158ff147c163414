"""Concurrent saves of one name (two `recviz import --name X --replace` at once) each keep their
own version: before, both could print "saved X v2" and the index kept only one."""

import multiprocessing

from recviz.data import saved
from tests.helpers import random_interactions

WRITERS, ROUNDS = 4, 20


def _save(name, seed, barrier, out):
    barrier.wait()  # start together: the race is between reading the index and writing it
    out.put(saved.save(name, random_interactions(n_users=12, n_items=20, per_user=(3, 5), seed=seed),
                       replace=True)["version"])


def test_four_concurrent_saves_keep_four_versions_twenty_times():
    ctx = multiprocessing.get_context("fork")
    for round_ in range(ROUNDS):
        name = f"race{round_}"
        barrier, out = ctx.Barrier(WRITERS), ctx.Queue()
        procs = [ctx.Process(target=_save, args=(name, 100 * round_ + k, barrier, out)) for k in range(WRITERS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        said = sorted(out.get(timeout=5) for _ in procs)
        kept = saved.versions(name)
        assert said == [1, 2, 3, 4] and [v["version"] for v in kept] == [1, 2, 3, 4], (said, kept)
        assert len({v["fingerprint"] for v in kept}) == WRITERS
        for v in kept:  # each version's file holds the data its index entry describes
            assert saved.fingerprint(saved.load(name, f"v{v['version']}")) == v["fingerprint"]
