"""Types and ranges declared once on the schema's fields, checked alike for a job file and for an override."""

from __future__ import annotations

import dataclasses

import pytest

from launcher.errors import ConfigError
from launcher.schema import DataSettings, JobConfig, LogSettings, MonitorSettings, WorldSettings
from launcher.validation import check_setting, coerce, range_problem

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(("section", "name", "value", "fragment"), [
    (DataSettings, "batch_size", 0, "dataloader(): data.batch_size: must be >= 1, got 0"),
    (DataSettings, "num_workers", -1, "must be >= 0"),
    (DataSettings, "num_workers", "four", "expected an integer or 'auto', got 'four'"),
    (DataSettings, "prefetch_factor", 0, "must be >= 1"),
    (DataSettings, "even_shards", "wrap", "expected 'pad' or 'drop'"),
    (DataSettings, "pin_memory", "yes", "expected true or false or 'auto'"),
    (WorldSettings, "master_port", 70000, "must be <= 65535"),
    (WorldSettings, "monitor_interval", 0, "must be > 0"),
    (MonitorSettings, "hang_timeout", 0.0, "must be > 0"),
])
def test_a_bad_value_names_the_key_and_the_limit(section: type, name: str, value: object, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")) as caught:
        check_setting(section, name, value, "dataloader(): data")
    assert caught.value.hint


@pytest.mark.parametrize(("section", "name", "value", "kept"), [
    (DataSettings, "num_workers", "auto", "auto"),  # the non-numeric choice of a union is not ranged
    (DataSettings, "prefetch_factor", None, None),
    (WorldSettings, "shutdown_timeout", 0, 0.0),  # an int where a float is expected becomes a float
    (LogSettings, "local_ranks_filter", 0, "0"),  # a number where a string is expected becomes the string
])
def test_good_values_are_kept_as_the_field_holds_them(section: type, name: str, value: object, kept: object) -> None:
    assert check_setting(section, name, value, "x") == kept


def test_every_ranged_field_rejects_a_value_below_its_limit() -> None:
    """The limits are data on the fields; each section's limits are enforced by the one validator."""
    for section in (WorldSettings, DataSettings, MonitorSettings, JobConfig):
        for field in dataclasses.fields(section):
            if "minimum" in field.metadata:
                assert range_problem(field, field.metadata["minimum"] - 1) is not None, field.name
                assert range_problem(field, field.metadata["minimum"]) is None, field.name
            if "above" in field.metadata:
                assert range_problem(field, field.metadata["above"]) is not None, field.name


def test_bools_are_not_numbers() -> None:
    assert not coerce(True, int)[0] and not coerce(1, bool)[0] and not coerce(False, float)[0]
