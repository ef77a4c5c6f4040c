"""The search filter language: parsed once, checked per field, errors point at the token."""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidFilter
from modelyard.store.filters import Condition, OrderKey, parse_filter, parse_order_by
from modelyard.store.sql.registry import MODEL_FIELDS, VERSION_FIELDS
from modelyard.store.sql.runs import RUN_FIELDS


def test_conditions_of_every_kind() -> None:
    text = (
        "params.alpha = '0.5' AND metrics.rmse <= 1e-3 and tags.`owner id` LIKE 'an%' "
        "AND attributes.status != \"FAILED\" AND run_name ILIKE 'x''s' "
        "AND run_id NOT IN ('a', 'b') AND metrics.train/loss > -2"
    )
    assert parse_filter(text, RUN_FIELDS) == [
        Condition("param", "alpha", "=", "0.5"),
        Condition("metric", "rmse", "<=", 0.001),
        Condition("tag", "owner id", "LIKE", "an%"),
        Condition("attribute", "status", "!=", "FAILED"),
        Condition("attribute", "run_name", "ILIKE", "x's"),
        Condition("attribute", "run_id", "NOT IN", ("a", "b")),
        Condition("metric", "train/loss", ">", -2.0),
    ]


def test_dotted_keys_and_empty_filters() -> None:
    assert parse_filter("params.model.depth = '3'", RUN_FIELDS) == [
        Condition("param", "model.depth", "=", "3")
    ]
    assert parse_filter(None, RUN_FIELDS) == []
    assert parse_filter("   ", RUN_FIELDS) == []


@pytest.mark.parametrize(
    ("text", "fields", "message", "position"),
    [
        ("params.a = 1", RUN_FIELDS, "compared with a quoted string", 0),
        ("metrics.a = 'x'", RUN_FIELDS, "compared with a number", 0),
        ("metrics.a LIKE 1", RUN_FIELDS, "is a number; it takes", 0),
        ("colour = 'red'", RUN_FIELDS, "unknown field colour", 0),
        ("params.a = '1' OR params.b = '2'", RUN_FIELDS, "OR is not supported", 15),
        ("params.a = '1' params.b = '2'", RUN_FIELDS, "expected AND", 15),
        ("params.a = ", RUN_FIELDS, "expected a value, found the end", 11),
        ("params.a ~ '1'", RUN_FIELDS, "unexpected character '~'", 9),
        ("bogus.a = '1'", RUN_FIELDS, "unknown prefix 'bogus'", 0),
        ("params.a IN '1'", RUN_FIELDS, "expected '\\(' after IN", 12),
        ("params.a = '1", RUN_FIELDS, "unexpected character", 11),
        ("tags.k = 'v' AND params.x = '1'", MODEL_FIELDS, "unknown field params.x", 17),
        ("version_number > 'a'", VERSION_FIELDS, "compared with a number", 0),
    ],
)
def test_errors_name_the_token(text: str, fields: object, message: str, position: int) -> None:
    with pytest.raises(InvalidFilter, match=message) as info:
        parse_filter(text, fields)  # type: ignore[arg-type]
    assert info.value.position == position
    assert info.value.text == text


def test_order_by() -> None:
    assert parse_order_by(["metrics.rmse DESC", "start_time", "params.a asc"], RUN_FIELDS) == [
        OrderKey("metric", "rmse", descending=True),
        OrderKey("attribute", "start_time"),
        OrderKey("param", "a"),
    ]
    with pytest.raises(InvalidFilter, match="ASC or DESC"):
        parse_order_by(["name sideways"], MODEL_FIELDS)
    with pytest.raises(InvalidFilter, match="cannot order by colour"):
        parse_order_by(["colour"], MODEL_FIELDS)
