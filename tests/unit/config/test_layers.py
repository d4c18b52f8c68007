"""Reading a job file: what is not UTF-8 YAML text is one ConfigError naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.config.layers import read_yaml_layer
from launcher.errors import ConfigError

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(("content", "fragment"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text (byte 0x89 at offset 0)"),  # an image named .yaml
    ("entrypoint: t.py\n".encode("utf-16"), "not UTF-8 text (byte 0xff at offset 0)"),
    (b"entrypoint: caf\xe9.py\n", "not UTF-8 text (byte 0xe9 at offset 15)"),  # latin-1
    (b"entrypoint: t.py\n\x00\x01", "not a text file (character #x0000 at offset 17)"),  # UTF-8, but binary
])
def test_a_file_that_is_not_utf8_yaml_text_is_one_config_error(content: bytes, fragment: str, tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        read_yaml_layer(path)
    assert str(raised.value).startswith(f"{path}: {fragment}") and "\n" not in str(raised.value)


def test_a_utf8_byte_order_mark_is_text(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes(b"\xef\xbb\xbfentrypoint: t.py\n")
    assert read_yaml_layer(path).tree == {"entrypoint": "t.py"}
