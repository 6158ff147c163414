"""What the pages share, by subject: the app's frame (`frame`), errors on a page (`errors`), the
run store and the worker (`runs`), where runs train (`executors`), datasets (`datasets`), the
Train form's widgets (`forms`) and the glossary popover (`glossary`). Only Streamlit glue lives
here: anything worth testing is computed in `recviz`.

A package, not modules beside the pages: Streamlit's legacy `pages/` layout takes every
`pages/*.py` for a page, but never a file in a subfolder of `pages/`.
"""
