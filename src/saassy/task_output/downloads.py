"""The headers of an artifact download: a name any client shows, and none that breaks a header."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

_NOT_PLAIN = re.compile(r"[^A-Za-z0-9._ -]+")


def content_disposition(path: str) -> str:
    """`attachment` with an ASCII `filename` and the exact name in `filename*` (RFC 6266, 5987).

    Both are built from allowed characters only, so a name holding quotes, CR/LF or any other
    control character can never end or split the header.
    """
    name = path.rsplit("/", 1)[-1]
    # Accents fold away (café -> cafe); other letters become one "_" each, so `文件.txt`
    # still has a name before its extension.
    folded = "".join(
        char if char.isascii() else "" if unicodedata.combining(char) else "_"
        for char in unicodedata.normalize("NFKD", name)
    )
    fallback = _NOT_PLAIN.sub("_", folded).strip(" ") or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
