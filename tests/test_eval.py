"""`taiwa eval` on the packaged Nami Ramen set: every figure is computed from the store the real pipeline filled,
and the judgement this round built does not slip back (floors well under today's figures)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from taiwa.cli import cli


def test_eval_reports_every_figure_and_keeps_its_floors(tmp_path):
    r = CliRunner().invoke(cli, ["eval", "--set", "nami", "--json", "--keep", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[r.output.index("{"):])
    f = out["figures"]
    assert out["posts"] == 93
    assert f["sarcasm"][1] == 11 and f["urgent_top10"][1] == 10 and f["incident"][1] == 8
    assert f["rank_gap"]["pairs"] == 7
    assert f["intent"][0] / f["intent"][1] >= 0.75                 # was 0.51 before the intent head
    assert f["sarcasm"][0] >= 4                                      # was 0 of 11
    assert f["urgent_top10"][0] >= 6                                 # was 6 of 10
    assert f["topic"][0] / f["topic"][1] >= 0.55
    assert f["incident"][0] >= 4                                     # was 0 of 8
    assert f["answered"][0] >= 9 and f["stubs"] == 0 and f["multi_open"] == 0      # was 0 answers, 19 stubs
    assert f["memory"][0] >= 5 and f["right_ask"][0] / f["right_ask"][1] >= 0.4
    assert f["wrong_ask"][0] / f["wrong_ask"][1] <= 0.25
    # What each post got: apologies only where a problem shows, complaints drafted, few left to a person.
    assert f["apology_no_problem"][0] / f["apology_no_problem"][1] <= 0.08
    assert f["complaints_drafted"][0] / f["complaints_drafted"][1] >= 0.8
    assert f["look"][0] / f["look"][1] <= 0.15 and f["sarcasm_liked"][0] <= 2
    assert (tmp_path / "run" / "nami" / "eval.db").exists()
