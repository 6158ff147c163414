"""Models and baselines, one file per family; `registry` says what exists and what each needs."""
