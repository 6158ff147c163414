"""RecViz — the Streamlit app. Run with `streamlit run app.py`.

This entry script runs the frame every page shares (`pages/ui/frame.py`: navigation, the
sidebar, an error boundary around the page); the pages are `pages/*.py`. Training never happens
in this process: pages submit runs to a background worker (`recviz.experiments.worker`) and read
what it stores.
"""

from pages.ui import frame

if __name__ == "__main__":
    frame.main()
