"""ratepad.surveys: the CSV reader, the questionnaire report against pingouin and numpy, and the
errors for bad files."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratepad import cli, surveys
from ratepad.errors import MetricsError, RatepadError, SurveyFormatError

TOL = 1e-9
ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(
    os.environ.get("RATEPAD_REFERENCE_DATA", ROOT.parent / "shared" / "reference-data")
)


def reference_file(name: str) -> Path:
    path = REFERENCE / name
    if not path.is_file():
        pytest.fail(f"reference data {path} is missing (set RATEPAD_REFERENCE_DATA)")
    return path


def close(a: float | None, b: float) -> bool:
    assert a is not None
    return abs(a - b) <= TOL * max(1.0, abs(b))


def check_against_pandas(table: surveys.ScoreTable, frame: pd.DataFrame) -> None:
    """Report of ``table`` against pingouin and pandas on the same data as a DataFrame."""
    report = surveys.survey_report(table)
    alpha, ci = pg.cronbach_alpha(frame)
    assert close(report.alpha, float(alpha))
    assert abs(report.ci[0] - ci[0]) <= 5e-4 + TOL and abs(report.ci[1] - ci[1]) <= 5e-4 + TOL
    cov = frame.cov().to_numpy()
    complete = not frame.isna().any().any()
    for j, item in enumerate(report.item_stats):
        column = frame.iloc[:, j]
        assert item.n == column.count()
        assert close(item.mean, float(column.mean()))
        assert close(item.sd, float(column.std()))
        rest = frame.drop(columns=frame.columns[j])
        others = [i for i in range(len(cov)) if i != j]
        rest_variance = cov[np.ix_(others, others)].sum()
        if cov[j, j] == 0 or not rest_variance > 0:
            assert item.item_rest_r is None  # no variance: no correlation
        elif complete:
            # Corrected item-total correlation: Pearson r of the item and the sum of the others.
            r = np.corrcoef(column.to_numpy(), rest.sum(axis=1).to_numpy())[0, 1]
            assert close(item.item_rest_r, float(r))
        else:
            # Same from the pairwise covariance matrix (the formula of R's psych::alpha, r.drop).
            r = cov[j, others].sum() / math.sqrt(cov[j, j] * rest_variance)
            assert close(item.item_rest_r, float(r))
        if frame.shape[1] > 2 and rest_variance > 0:
            assert close(item.alpha_if_deleted, float(pg.cronbach_alpha(rest)[0]))
        else:
            assert item.alpha_if_deleted is None


def test_wide_reference_file_with_missing_scores() -> None:
    path = reference_file("cronbach_wide_missing.csv")
    table = surveys.read_scores_csv(path)
    assert table.layout == "wide" and table.items[0] == "Q1"  # byte-order mark removed
    assert len(table.items) == 11 and len(table.scores) == 12
    frame = pd.read_csv(path, encoding="utf-8-sig")
    check_against_pandas(table, frame)
    report = surveys.survey_report(table)
    assert report.missing_scores == int(frame.isna().sum().sum()) == 4
    assert round(report.alpha, 12) == round(0.732660835214447, 12)


def test_long_reference_file() -> None:
    path = reference_file("cronbach_alpha.csv")
    table = surveys.read_scores_csv(path)
    assert table.layout == "long" and len(table.items) == 10 and len(table.scores) == 15
    long = pd.read_csv(path)
    frame = long.pivot(index="Subj", columns="Items", values="Scores")[list(table.items)]
    frame = frame.loc[[int(s) for s in table.respondents]]
    check_against_pandas(table, frame)
    alpha, ci = pg.cronbach_alpha(data=long, items="Items", scores="Scores", subject="Subj")
    report = surveys.survey_report(table)
    assert close(report.alpha, float(alpha)) and [round(v, 3) for v in report.ci] == list(ci)


@st.composite
def tables(draw: st.DrawFn) -> list[list[float | None]]:
    n = draw(st.integers(3, 30))
    k = draw(st.integers(2, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scores = np.clip(rng.integers(1, 6, size=(n, 1)) + rng.integers(-2, 3, size=(n, k)), 1, 5)
    gaps = rng.random((n, k)) < draw(st.sampled_from([0.0, 0.1]))
    gaps[:, 0] = False  # every respondent answers something
    return [[None if gaps[i, j] else float(scores[i, j]) for j in range(k)] for i in range(n)]


def wide_csv(rows: list[list[float | None]]) -> str:
    header = ",".join(f"问题{j + 1}" for j in range(len(rows[0])))
    lines = [",".join("" if v is None else f"{v:g}" for v in row) for row in rows]
    return "\ufeff" + header + "\r\n" + "\r\n".join(lines) + "\r\n"


def long_csv(rows: list[list[float | None]]) -> str:
    """Grouped by item as pingouin's example file is (items and subjects keep their order)."""
    lines = ["Scores,Subj,Items"]
    for j in range(len(rows[0])):
        lines += [f"{row[j]:g},r{i},q{j}" for i, row in enumerate(rows) if row[j] is not None]
    return "\n".join(lines) + "\n"


@settings(max_examples=40, deadline=None)
@given(tables())
def test_generated_tables_in_both_layouts(rows: list[list[float | None]]) -> None:
    frame = pd.DataFrame(rows, dtype=float)
    wide = surveys.parse_scores_csv(wide_csv(rows))
    long = surveys.parse_scores_csv(long_csv(rows))
    assert wide.scores == long.scores == tuple(tuple(r) for r in rows)
    assert wide.items == tuple(f"问题{j + 1}" for j in range(len(rows[0])))
    assert long.items == tuple(f"q{j}" for j in range(len(rows[0])))
    cov = frame.cov().to_numpy()
    if np.isnan(cov).any() or not cov.sum() > 0:
        with pytest.raises(MetricsError):
            surveys.survey_report(wide)
        return
    if not cov.sum() > 1e-6 * np.trace(cov):
        return  # alpha is ill-conditioned there for any implementation
    check_against_pandas(wide, frame)
    from_wide, from_long = surveys.survey_report(wide), surveys.survey_report(long)
    assert (from_wide.alpha, from_wide.ci) == (from_long.alpha, from_long.ci)
    assert [s.mean for s in from_wide.item_stats] == [s.mean for s in from_long.item_stats]


def test_empty_respondents_are_dropped_and_counted() -> None:
    table = surveys.parse_scores_csv("a,b,c\n1,2,3\n,,\n2,3,3\n\n3,3,5\n , ,\n")
    assert table.empty_rows == 2 and table.respondents == ("2", "4", "6")
    report = surveys.survey_report(table)
    assert report.empty_rows == 2 and report.respondents == 3


def test_renderings() -> None:
    table = surveys.read_scores_csv(reference_file("cronbach_wide_missing.csv"))
    report = surveys.survey_report(table, confidence=0.9)
    text = surveys.render_text(report)
    assert f"Cronbach's alpha {report.alpha:.3f}, 90 % CI {report.ci[0]:.3f}" in text
    assert "12 respondents, 11 items, 4 missing scores" in text
    assert len(text.splitlines()) == 3 + 1 + 11 and "Q11" in text
    data = json.loads(surveys.render_json(report))
    assert data == json.loads(json.dumps(report.to_dict()))
    assert data["alpha"] == report.alpha and data["ci"] == list(report.ci)
    assert [s["name"] for s in data["item_stats"]] == list(table.items)


def test_two_items_have_no_alpha_if_deleted() -> None:
    table = surveys.parse_scores_csv("x,y\n1,2\n2,2\n3,5\n4,4\n")
    stats = surveys.survey_report(table).item_stats
    assert [s.alpha_if_deleted for s in stats] == [None, None]
    assert stats[0].item_rest_r == pytest.approx(np.corrcoef([1, 2, 3, 4], [2, 2, 5, 4])[0, 1])


def test_constant_item_has_no_correlation() -> None:
    table = surveys.parse_scores_csv("x,y,z\n1,2,3\n1,3,5\n1,5,4\n1,4,4\n")
    stats = surveys.survey_report(table).item_stats
    assert stats[0].item_rest_r is None and stats[0].sd == 0.0
    assert stats[1].item_rest_r is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("\n\n", "empty file"),
        ("a,b\n1,2\n3\n", r"<csv>:3: 1 fields, the header has 2"),
        ("a,b\n1,x\n", r"<csv>:2, column 'b': 'x' is not a number"),
        ("a,b\n1,inf\n", "not a finite number"),
        ("a,b\n1,nan\n", "not a finite number"),
        ("a,,c\n1,2,3\n", "column 2 of the header has no item name"),
        ("a,b,a\n1,2,3\n", r"item name\(s\) \['a'\] appear more than once"),
        ("a,b\n,\n,\n", "no scores"),
        ('a,b\n1,"2\n', "<csv>:"),
        ("Subj,Items,Scores\n1,Q1,3\n1,Q1,4\n", "subject '1' answers item 'Q1' a second time"),
        ("Subj,Items,Scores\n1,,3\n", "must not be blank"),
        ("Subj,Items,Scores\n1,Q1\n", "2 fields, the header has 3"),
        ("subj,ITEMS,scores\n1,Q1,bad\n", "column 'scores': 'bad' is not a number"),
    ],
)
def test_bad_csv(text: str, message: str) -> None:
    with pytest.raises(SurveyFormatError, match=message) as info:
        surveys.parse_scores_csv(text)
    assert isinstance(info.value, RatepadError) and "\n" not in str(info.value)


def test_bad_files(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("a,b\n1,2\n\xe9,3\n".encode("latin-1"))
    with pytest.raises(SurveyFormatError, match="not UTF-8"):
        surveys.read_scores_csv(latin)
    with pytest.raises(SurveyFormatError, match="No such file"):
        surveys.read_scores_csv(tmp_path / "absent.csv")
    with pytest.raises(SurveyFormatError, match="Is a directory"):
        surveys.read_scores_csv(tmp_path)


def test_too_few_respondents_is_a_metrics_error() -> None:
    table = surveys.parse_scores_csv("a,b\n1,2\n")
    with pytest.raises(MetricsError, match="at least 2 respondents"):
        surveys.survey_report(table)


def test_cli_survey_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(reference_file("cronbach_alpha.csv"))
    assert cli.main(["survey", path]) == 0
    assert "Cronbach's alpha 0.592, 95 % CI 0.195 to 0.840 (Feldt)" in capsys.readouterr().out
    assert cli.main(["survey", path, "--json", "--confidence", "0.9"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["confidence"] == 0.9 and data["respondents"] == 15 and data["items"] == 10


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("a,b\n1,x\n", [], "'x' is not a number"),
        ("a,b\n1,2\n", [], "at least 2 respondents"),
        (None, [], "No such file"),
    ],
)
def test_cli_survey_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    args: list[str],
    message: str,
) -> None:
    path = tmp_path / "scores.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert cli.main(["survey", str(path), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err
    assert captured.err.count("\n") == 1 and captured.err.startswith("ratepad survey: error:")


def test_cli_survey_bad_confidence(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["survey", "x.csv", "--confidence", "1.5"])
    assert info.value.code == 2 and "between 0 and 1" in capsys.readouterr().err
