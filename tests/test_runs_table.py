"""`recviz runs` keeps its columns in line whatever the cells hold: a protocol label with
", split seed N" is longer than the old fixed 34 characters and pushed every later column right."""

from recviz.commands.runs import runs_table
from recviz.commands.table import text_table


def test_text_table_sizes_each_column_to_its_widest_cell():
    lines = text_table(["a", "num"], [["long cell", 1], ["x", 12345]], right=[False, True])
    assert lines == ["a           num",
                     "long cell     1",
                     "x         12345"]


def _row(run_id, protocol, **extra):
    row = {"id": run_id, "name": None, "status": "done", "model": "gmf", "dataset": "ml-100k",
           "protocol_detail": protocol, "seed": 7, "HR@10": 0.61234, "NDCG@10": 0.3456, "epochs_run": 12,
           "created_at": 0.0, "error": None}
    return {**row, **extra}


def test_runs_columns_stay_in_line_with_a_split_seed_label():
    long = "leave-one-out, 100 candidates, validation: last train item, split seed 3"
    assert len(long) > 34  # the old fixed width
    rows = [_row(1, long), _row(22, "leave-one-out, 100 candidates", name="short one", seed=1234)]
    header, first, second, named = runs_table(rows)
    assert named.strip() == "name: short one"
    for line in (first, second):  # every column ends where its header ends (right-aligned ones)
        for col in ("seed", "HR@10", "NDCG@10", "epochs"):
            end = header.index(col) + len(col)
            assert line[end - 1] != " " and line[end] == " ", (col, line)
    assert long in first and first.index(long) == second.index("leave-one-out") == header.index("protocol")
    assert header.index("seed") >= header.index("protocol") + len(long)
