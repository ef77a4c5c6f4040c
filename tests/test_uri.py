from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.errors import InvalidURI
from modelyard.uri import ModelsURI, PathURI, RunsURI, parse_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/fraud/7", ModelsURI("fraud", version=7)),
        ("models:/fraud@champion", ModelsURI("fraud", alias="champion")),
        ("models:/fraud/latest", ModelsURI("fraud", latest=True)),
        ("models:/fraud/LATEST", ModelsURI("fraud", latest=True)),
        ("models:/fraud/3/sub/file.txt", ModelsURI("fraud", version=3, subpath="sub/file.txt")),
        ("runs:/abc123/model", RunsURI("abc123", "model")),
        ("runs:/abc123/a/b", RunsURI("abc123", "a/b")),
        ("/abs/path", PathURI(Path("/abs/path"))),
        ("./rel", PathURI(Path("rel"))),
        ("file:///abs/x", PathURI(Path("/abs/x"))),
    ],
)
def test_parse(uri: str, expected: object) -> None:
    assert parse_uri(uri) == expected


def test_str_round_trips() -> None:
    for text in [
        "models:/fraud/7",
        "models:/fraud@champion",
        "models:/fraud/latest",
        "runs:/abc/model",
    ]:
        assert str(parse_uri(text)) == text


@pytest.mark.parametrize(
    ("uri", "part"),
    [
        ("models:/fraud", "version"),
        ("models:/fraud/0", "version"),
        ("models:/fraud/x1", "version"),
        ("models:/fraud@latest", "alias"),
        ("models:/fraud@v3", "alias"),
        ("models:/fraud@bad alias", "alias"),
        ("models:/fraud@", "alias"),
        ("models:/..@champion", "model name"),
        ("models:/fraud/1/../../etc", "sub-path"),
        ("runs:/abc/../../etc/passwd", "artifact path"),
        ("runs:/abc//etc/passwd", None),
        ("runs://abc/model", None),
        ("runs:/ab$c/model", "run id"),
        ("ftp://host/x", "scheme"),
        ("s3://bucket/x", "scheme"),
        ("file://evil.example/x", "host"),
    ],
)
def test_rejects_unsafe_or_malformed(uri: str, part: str | None) -> None:
    with pytest.raises(InvalidURI) as info:
        parse_uri(uri)
    if part:
        assert info.value.part == part
    assert uri in str(info.value)


def test_control_characters_rejected() -> None:
    with pytest.raises(InvalidURI, match="control"):
        parse_uri("models:/fr\x00aud/1")
