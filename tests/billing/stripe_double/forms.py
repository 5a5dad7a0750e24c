"""Stripe's form encoding: `items[0][price]=p&metadata[plan]=pro` and back."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

_SEGMENT = re.compile(r"\[([^\]]*)\]")

Form = dict[str, Any]


def decode(body: str) -> Form:
    """Nested dicts and lists from a Stripe-encoded body or query string."""
    tree: Form = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        head = key.split("[", 1)[0]
        path = [head, *_SEGMENT.findall(key[len(head) :])]
        _put(tree, path, value)
    decoded: Form = _listify(tree)
    return decoded


def _put(node: Form, path: list[str], value: str) -> None:
    for i, segment in enumerate(path):
        last = i == len(path) - 1
        if segment == "":  # `lookup_keys[]=a`: the next free index
            segment = str(len(node))
        if last:
            node[segment] = value
            return
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):  # `a=1&a[b]=2`: the nested one wins, as in Stripe
            child = node[segment] = {}
        node = child


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {key: _listify(value) for key, value in node.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def encode(form: Form) -> str:
    """The inverse of `decode`, for the calls the double makes to localstripe."""
    return urlencode(list(_flatten("", form)))


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        pairs: list[tuple[str, str]] = []
        for key, item in value.items():
            pairs += _flatten(f"{prefix}[{key}]" if prefix else str(key), item)
        return pairs
    if isinstance(value, list):
        return [pair for i, item in enumerate(value) for pair in _flatten(f"{prefix}[{i}]", item)]
    if value is None:
        return []
    if isinstance(value, bool):
        return [(prefix, "true" if value else "false")]
    return [(prefix, str(value))]
