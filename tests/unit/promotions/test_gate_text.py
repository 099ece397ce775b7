"""Metric gates as an admin types them, one per line: the same text the portal shows."""

from __future__ import annotations

import pytest

from services.errors import ValidationError
from services.promotions.policies import parse_gates


def test_gates_are_read_one_per_line_with_or_without_spaces() -> None:
    gates = parse_gates("eval_loss < 1.2\n\n  accuracy>=0.8  \nrouge/l <= 1e-1\n")
    assert [g.describe() for g in gates] == ["eval_loss < 1.2", "accuracy >= 0.8", "rouge/l <= 0.1"]
    assert parse_gates("") == [] and parse_gates("\n  \n") == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("eval_loss 1.2", "Line 1 (eval_loss 1.2): write metric, operator (< <= > >=)"),
        ("eval_loss == 1.2", "Line 1 (eval_loss == 1.2): write metric, operator"),
        ("ok < 1\neval_loss < high", "Line 2 (eval_loss < high): the threshold must be a number"),
        ("eval_loss < nan", "Line 1 (eval_loss < nan): Threshold: must be a finite number"),
        ("eval_loss < inf", "Line 1 (eval_loss < inf): Threshold: must be a finite number"),
        ("bad!name < 1", "Line 1 (bad!name < 1): Metric: a metric name is 1-250 letters"),
    ],
)
def test_each_bad_line_is_named_and_nothing_is_returned(text: str, says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_gates(text)
    assert says in str(refused.value)
    assert str(refused.value).endswith("Nothing was saved.")
