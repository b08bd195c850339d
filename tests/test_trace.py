"""power.csv / power.meta.json: torn rows from a crash, garbage, resume appends, atomic meta."""
import json
import os

import numpy as np
import pytest

from hw import trace as tracefmt
from hw.meters.base import Sample
from hw.trace import read_trace

pytestmark = pytest.mark.board  # hw/ only: also run under the board's stack (dev.py)


def write_rows(path, rows, counter=False, rails=("A",)):
    fh = tracefmt.open_for_append(str(path), tracefmt.header(list(rails), counter))
    for r in rows:
        fh.write(tracefmt.format_row(r, list(rails), counter))
    fh.close()


def test_round_trip_with_rails_and_counter(tmp_path):
    path = tmp_path / "power.csv"
    write_rows(path, [Sample(10.0, 5.0, {"A": 1.25}, energy_j=0.0), Sample(10.5, 6.0, {}, energy_j=2.75)],
               counter=True)
    tr = read_trace(str(tmp_path))  # a run folder works as well as the file
    assert path.read_text().splitlines()[0] == "t,watts,A,energy_j"
    assert list(tr.t) == [10.0, 10.5] and list(tr.watts) == [5.0, 6.0]
    assert tr.rails["A"][0] == 1.25 and np.isnan(tr.rails["A"][1])
    assert list(tr.energy_j) == [0.0, 2.75] and tr.counter and tr.meta is None


def test_torn_last_row_and_garbage_are_skipped(tmp_path):
    path = tmp_path / "power.csv"
    path.write_text("t,watts\n1.0,2.0\nxx,yy\n2.0,2.5\n3.0,2.")
    tr = read_trace(str(path))
    assert list(tr.t) == [1.0, 2.0, 3.0]  # "3.0,2." still parses: a float cut after its point
    path.write_text("t,watts\n1.0,2.0\n2.0,2.5\n3.0")
    tr = read_trace(str(path))
    assert list(tr.t) == [1.0, 2.0] and tr.skipped_rows == 1


def test_resume_appends_after_a_torn_row(tmp_path):
    path = tmp_path / "power.csv"
    path.write_text("t,watts\n1.0,2.0\n2.0,2")  # crashed mid-row
    write_rows(path, [Sample(3.0, 4.0, {})], rails=())
    assert path.read_text() == "t,watts\n1.0,2.0\n2.0,2\n3.000000,4.0000\n"
    assert list(read_trace(str(path)).t) == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        write_rows(path, [Sample(4.0, 1.0, {"B": 1.0})], rails=("B",))


def test_meta_is_replaced_atomically(tmp_path):
    path = str(tmp_path / "power.csv")
    tracefmt.write_meta(path, {"samples": 1})
    tracefmt.write_meta(path, {"samples": 2})
    assert tracefmt.meta_path(path) == str(tmp_path / "power.meta.json")
    assert json.loads((tmp_path / "power.meta.json").read_text()) == {"samples": 2}
    assert sorted(os.listdir(str(tmp_path))) == ["power.meta.json"]  # no temp file left behind
    assert tracefmt.read_meta(str(tmp_path / "other.csv")) is None


def test_not_a_trace(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError):
        read_trace(str(path))


def test_write_trace_round_trips_rails_counter_and_empty_cells(tmp_path):
    rows = [Sample(10.0, 5.0, {"A": 1.25}, energy_j=0.0), Sample(10.5, 6.0, {}, energy_j=2.75)]
    write_rows(tmp_path / "src.csv", rows, counter=True)
    tr = read_trace(str(tmp_path / "src.csv"))
    tracefmt.write_trace(str(tmp_path / "copy.csv"), tr)
    copy = read_trace(str(tmp_path / "copy.csv"))
    assert list(copy.t) == [10.0, 10.5] and list(copy.watts) == [5.0, 6.0] and list(copy.energy_j) == [0.0, 2.75]
    assert copy.rails["A"][0] == 1.25 and np.isnan(copy.rails["A"][1])
    assert (tmp_path / "copy.csv").read_text() == (tmp_path / "src.csv").read_text()
