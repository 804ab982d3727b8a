"""Survey definitions, responses read against them (one error line per bad cell), the report
built from the metrics, the example survey, the generator and `ratepad survey`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from scipy import stats

from ratepad import cli, metrics
from ratepad.errors import SurveyFormatError
from ratepad.survey import (
    SURVEY_SCHEMA,
    SurveyImportError,
    analyse,
    example_definition,
    example_path,
    generate_csv,
    parse_definition,
    parse_responses,
)

TOL = 1e-9


def test_the_example_survey_has_the_five_dimensions_nps_and_ces() -> None:
    d = example_definition()
    assert d.dimensions() == ["tangibles", "reliability", "responsiveness", "assurance",
                              "empathy"]  # fmt: skip
    assert len(d.of_kind("expectation")) == len(d.of_kind("perception")) == 22
    assert len(d.of_kind("nps")) == len(d.of_kind("ces")) == 1
    jsonschema.Draft202012Validator.check_schema(SURVEY_SCHEMA)
    assert d.source is not None
    jsonschema.validate(d.source, SURVEY_SCHEMA)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("scales"), "missing 'scales'"),
        (lambda s: s["questions"][0].update(kind="mood"), "kind"),
        (lambda s: s["questions"][1].update(id=s["questions"][0]["id"]), "used twice"),
        (lambda s: s["questions"][0].update(scale="nope"), "no scale named"),
        (lambda s: s["questions"][0].pop("dimension"), "needs a dimension"),
        (lambda s: s.update(first="2026-12-01", last="2026-11-01"), "starts after it ends"),
        (lambda s: s["scales"]["nps"].update(max=5), r"0\.\.10"),
        (lambda s: s.update(extra=1), "unknown key"),
    ],
)
def test_bad_definitions_get_one_line(change: object, message: str) -> None:
    data = json.loads(json.dumps(example_definition().source))
    change(data)  # type: ignore[operator]
    with pytest.raises(SurveyFormatError, match=message) as info:
        parse_definition(data, "def")
    assert "\n" not in str(info.value)


def test_every_bad_cell_is_one_line_and_nothing_is_imported() -> None:
    d = example_definition()
    lines = generate_csv(d, 5, seed=2).splitlines()
    header = lines[0].split(",")
    t1 = header.index("T1_P")
    row = lines[2].split(",")
    row[t1] = "8"
    row[t1 + 1] = "good"
    lines[2] = ",".join(row)
    lines[4] = lines[4] + ",1"
    with pytest.raises(SurveyImportError) as info:
        parse_responses(d, "\n".join(lines) + "\n", source="r.csv")
    assert info.value.errors == [
        "r.csv: row 3, column 'T1_P': 8 is outside the scale 1..7",
        f"r.csv: row 3, column '{header[t1 + 1]}': 'good' is not a whole number",
        f"r.csv: row 5: {len(header) + 1} fields, the header has {len(header)}",
    ]
    bad_header = "respondent,T1_P,EXTRA\n1,2,3\n"
    with pytest.raises(SurveyImportError) as info:
        parse_responses(d, bad_header, source="h.csv")
    assert (
        info.value.errors[0]
        == "h.csv: row 1, column 'EXTRA': no question of the survey has this id"
    )
    assert any("column 'NPS': the column is missing" in e for e in info.value.errors)


def test_the_report_equals_the_reference_implementations() -> None:
    d = example_definition()
    r = parse_responses(d, generate_csv(d, 120, seed=5))
    report = analyse(d, r)
    qs = d.questions
    assert report["respondents"] == 120
    rel = next(x for x in report["dimensions"] if x["name"] == "reliability")
    p_idx = [i for i, q in enumerate(qs) if q.kind == "perception" and q.dimension == "reliability"]
    e_idx = [
        i for i, q in enumerate(qs) if q.kind == "expectation" and q.dimension == "reliability"
    ]
    frame = np.array([[np.nan if v is None else v for v in row] for row in r.rows], dtype=float)
    gaps = np.nanmean(frame[:, p_idx], axis=1) - np.nanmean(frame[:, e_idx], axis=1)
    ref = stats.ttest_1samp(gaps, 0.0).confidence_interval(0.95)
    assert abs(rel["gap"]["mean"] - float(np.mean(gaps))) <= TOL
    assert abs(rel["gap"]["ci"][0] - float(ref.low)) <= TOL
    assert abs(rel["gap"]["ci"][1] - float(ref.high)) <= TOL
    assert rel["gap"]["n"] == 120 and rel["gap"]["small"] is False
    complete = frame[:, p_idx][~np.isnan(frame[:, p_idx]).any(axis=1)]
    alpha, _ = metrics.cronbach_alpha(complete.tolist())
    assert abs(rel["alpha"]["alpha"] - alpha) <= TOL and rel["alpha"]["n"] == len(complete)
    nps_col = [row[d.of_kind("nps")[0]] for row in r.rows]
    assert report["nps"]["nps"] == metrics.net_promoter(nps_col)["nps"]
    assert report["ipa"]["source"] == "stated"
    assert {p["name"] for p in report["ipa"]["points"]} == set(d.dimensions())
    assert json.loads(json.dumps(report)) == report  # stored as JSON


def test_figures_below_the_minimum_n_are_marked_small() -> None:
    d = example_definition()
    report = analyse(d, parse_responses(d, generate_csv(d, 6, seed=1)))
    assert report["min_n"] == 10
    assert report["nps"]["small"] is True and report["nps"]["n"] == 6
    assert all(x["gap"]["small"] for x in report["dimensions"])
    assert report["ipa"] is None  # no attribute has enough answers


def test_the_generator_is_seeded() -> None:
    d = example_definition()
    assert generate_csv(d, 20, seed=4) == generate_csv(d, 20, seed=4)
    assert generate_csv(d, 20, seed=4) != generate_csv(d, 20, seed=5)


def test_cli_survey_keeps_alpha_and_adds_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.csv"
    assert cli.main(["survey", "generate", "-n", "40", "--seed", "3", "-o", str(out)]) == 0
    assert cli.main(["survey", str(out), "--definition", str(example_path()), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["respondents"] == 40 and len(report["dimensions"]) == 5
    wide = tmp_path / "w.csv"
    wide.write_text("a,b,c\n1,2,3\n2,2,4\n3,4,4\n")
    assert cli.main(["survey", str(wide)]) == 0  # today's usage: Cronbach's alpha
    assert "Cronbach's alpha" in capsys.readouterr().out
    text = out.read_text().splitlines()
    text[1] = text[1].replace(",", ",9", 1)
    out.write_text("\n".join(text) + "\n")
    assert cli.main(["survey", str(out), "--definition", str(example_path())]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("ratepad survey: error: ") for line in err)
    assert "row 2, column" in err[0]
    assert cli.main(["survey", "--schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "ratepad survey definition"
