"""The slurm: section's rules: sbatch's time limits, and what an #SBATCH line can carry."""

from __future__ import annotations

import pytest

from launcher.config.slurm_rules import sbatch_value_problem, time_limit_seconds


@pytest.mark.parametrize(("text", "seconds"), [
    ("30", 1800), ("30:15", 1815), ("4:00:00", 14400), ("2-0", 172800), ("1-12", 129600), ("1-1:30", 91800),
    ("1-0:0:5", 86405), ("UNLIMITED", None), ("infinite", None),
])
def test_every_form_of_sbatch_time(text: str, seconds: int | None) -> None:
    assert time_limit_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "1h", "1:2:3:4", "-1", "1-", "1-2-3", "01:00 "])
def test_a_time_sbatch_would_not_take_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        time_limit_seconds(text)


@pytest.mark.parametrize("value", ["gpu", "a100&ib|[rack1|rack2]", "$(id)`x`;y", "proj-17", "node%j", "1-00:00:00"])
def test_shell_characters_are_plain_text_in_an_sbatch_line(value: str) -> None:
    assert sbatch_value_problem(value) is None  # bash never runs an #SBATCH line; sbatch takes them as written


@pytest.mark.parametrize("value", ["a b", "a\tb", "a\nb", "a\rb", "a'b", 'a"b', "a\\b", "a#b", "a\x00b", ""])
def test_what_sbatch_splits_quotes_escapes_or_ends_a_line_on_is_refused(value: str) -> None:
    assert sbatch_value_problem(value) is not None
