"""Command implementations of `recviz` (the parser lives in `recviz.cli`), one module per family."""
