"""Content-Disposition for any artifact name: RFC 6266 with an RFC 5987 `filename*`."""

from __future__ import annotations

import pytest

from saassy.task_output.downloads import content_disposition


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("report.csv", "attachment; filename=\"report.csv\"; filename*=UTF-8''report.csv"),
        (
            "dir/文件.txt",
            "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%96%87%E4%BB%B6.txt",
        ),
        ("café.txt", "attachment; filename=\"cafe.txt\"; filename*=UTF-8''caf%C3%A9.txt"),
        (
            'a"b\r\nSet-Cookie: x.txt',
            'attachment; filename="a_b_Set-Cookie_ x.txt"; '
            "filename*=UTF-8''a%22b%0D%0ASet-Cookie%3A%20x.txt",
        ),
        ("文件", "attachment; filename=\"__\"; filename*=UTF-8''%E6%96%87%E4%BB%B6"),
        ("\x01", "attachment; filename=\"_\"; filename*=UTF-8''%01"),
    ],
)
def test_any_name_gives_a_header_of_safe_characters(path: str, expected: str) -> None:
    header = content_disposition(path)
    assert header == expected
    header.encode("ascii")  # latin-1 encoding by the server cannot fail
    assert not any(ord(char) < 0x20 or ord(char) == 0x7F for char in header)
