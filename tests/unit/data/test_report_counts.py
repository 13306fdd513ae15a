"""Record kinds and the per-dataset report."""

from __future__ import annotations

from tunelab.data.report import DatasetReport


def test_skip_counts_by_reason_and_keeps_the_details() -> None:
    report = DatasetReport(name="demo")
    report.skip(1, "output: expected text, got int", "output: expected text, got int 5")
    report.skip(2, "output: expected text, got int", "output: expected text, got int 7")
    report.skip(3, "instruction: missing column 'instruction'")
    assert report.skipped == {"output: expected text, got int": 2, "instruction: missing column 'instruction'": 1}
    assert [(issue.row, issue.reason) for issue in report.skipped_rows] == [
        (1, "output: expected text, got int 5"), (2, "output: expected text, got int 7"),
        (3, "instruction: missing column 'instruction'")]


def test_skipped_rows_keep_the_first_hundred_but_count_all() -> None:
    report = DatasetReport(name="demo")
    for row in range(1, 151):
        report.skip(row, "output: the response is empty")
    assert report.skipped == {"output: the response is empty": 150}
    assert len(report.skipped_rows) == 100 and report.skipped_rows[-1].row == 100
