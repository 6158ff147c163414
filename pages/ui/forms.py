"""Widgets of the Train form: one generated from each declared option, and the MLflow switch."""

from __future__ import annotations

import streamlit as st

from recviz.errors import RecvizError
from recviz.experiments import tracking
from recviz.options import format_value


def option_input(option, key: str, container=None, value=None):
    """One widget for one declared option; returns (value, error). Numbers with a range get a
    stepper bounded by it; lists, texts, values spanning orders of magnitude and optional numbers
    (empty: not set) get a text field checked as the option declares (the message goes under it)."""
    box = container or st
    value = option.default if value is None else value
    help_text = option.describe()
    if option.kind == "bool":
        return box.checkbox(option.title, value=bool(value), key=key, help=help_text), None
    if option.choices:
        choices = list(option.choices)
        return box.selectbox(option.title, choices, index=choices.index(value), key=key, help=help_text,
                             required=True), None
    if option.kind == "int" and option.low is not None and option.high is not None and not option.optional:
        return int(box.number_input(option.title, int(option.low), int(option.high), int(value), step=1,
                                    key=key, help=help_text)), None
    if option.kind == "float" and not option.log and option.low is not None and option.high is not None \
            and option.high - option.low <= 10:
        return float(box.number_input(option.title, float(option.low), float(option.high), float(value),
                                      step=0.05, key=key, help=help_text)), None
    text = box.text_input(option.title, "" if value is None else format_value(value), key=key, help=help_text)
    try:
        return option.parse(text), None
    except RecvizError as err:
        box.error(err.problem)
        return value, err.problem


def mlflow_switch() -> str | None:
    """The Train page's "Log to MLflow" switch: None when off (or MLflow is missing, which it
    says with how to install it), else the tracking URI, "" for MLflow's default store."""
    if not st.toggle("Log to MLflow", key="mlflow_on",
                     help="When each run finishes, log its config, curves, metrics and weights to MLflow "
                          "(HR@10 is named HR_at_10 there)."):
        return None
    if not tracking.installed():
        st.warning(f"MLflow is not installed, so runs cannot be logged to it: {tracking.INSTALL_FIX}")
        return None
    return st.text_input("MLflow tracking URI", key="mlflow_uri",
                         placeholder="empty: MLflow's default (MLFLOW_TRACKING_URI, else ./mlflow.db)").strip()
