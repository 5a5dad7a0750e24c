"""The double reads form bodies as Stripe's SDK encodes them."""

from __future__ import annotations

from tests.billing.stripe_double.forms import decode, encode


def test_nested_keys_become_dicts_and_indexed_keys_lists() -> None:
    body = ("mode=subscription&line_items[0][price]=price_a&line_items[0][quantity]=2"
            "&line_items[1][price]=price_b&metadata[org]=o1"
            "&subscription_data[metadata][plan]=pro")  # fmt: skip
    assert decode(body) == {
        "mode": "subscription",
        "line_items": [{"price": "price_a", "quantity": "2"}, {"price": "price_b"}],
        "metadata": {"org": "o1"},
        "subscription_data": {"metadata": {"plan": "pro"}},
    }


def test_indexes_order_numerically_and_empty_brackets_append() -> None:
    indexed = "&".join(f"lookup_keys[{i}]=k{i}" for i in (10, 2, 0, 1, 3, 4, 5, 6, 7, 8, 9))
    assert decode(indexed)["lookup_keys"] == [f"k{i}" for i in range(11)]
    assert decode("lookup_keys[]=a&lookup_keys[]=b") == {"lookup_keys": ["a", "b"]}


def test_percent_encoding_and_blank_values_survive() -> None:
    assert decode("metadata[note]=a%20b%26c&metadata[gone]=") == {
        "metadata": {"note": "a b&c", "gone": ""}
    }


def test_encode_is_the_inverse_of_decode() -> None:
    form = {"items": [{"plan": "price_1", "quantity": 3}], "metadata": {"a": "b"},
            "active": False, "skipped": None}  # fmt: skip
    assert decode(encode(form)) == {
        "items": [{"plan": "price_1", "quantity": "3"}],
        "metadata": {"a": "b"},
        "active": "false",
    }
