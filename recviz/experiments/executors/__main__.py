"""`python -m recviz.experiments.executors ADDRESS`: join the Ray cluster at ADDRESS from this
short-lived process, note what it offers and print it (`ray_cluster.probe` runs this)."""

import sys

from recviz.experiments.executors.ray_cluster import _probe_main

raise SystemExit(_probe_main(sys.argv[1] if len(sys.argv) > 1 else "auto"))
