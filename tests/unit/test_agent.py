"""The agent's own pieces that need no processes."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(30)


def test_a_corrupt_error_file_does_not_break_the_summary(tmp_path):
    from launcher.agent import _failure

    broken = tmp_path / "error.json"
    broken.write_text("")  # a rank killed while writing, or a user's own file
    failure = _failure(1, 1234, 1, str(broken))
    assert failure.exitcode == 1 and failure.local_rank == 1
