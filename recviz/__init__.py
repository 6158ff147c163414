"""RecViz: train and understand neural collaborative-filtering recommenders.

The library knows nothing of Streamlit: the app's pages and the `recviz` command both call it.
"""

__version__ = "0.1.0"
