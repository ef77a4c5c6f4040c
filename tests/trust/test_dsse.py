"""DSSE envelopes: the one PAE encoding, and a JSON form read strictly."""

from __future__ import annotations

import base64
import json

import pytest

from modelyard.errors import SignatureError
from modelyard.trust.dsse import Envelope, EnvelopeSignature, pae
from modelyard.trust.keys import SigningKey


def test_pae_matches_the_protocol_example() -> None:
    # secure-systems-lab/dsse protocol.md, "Test vectors"
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_lengths_are_bytes_not_characters() -> None:
    assert pae("tÿpe", "é".encode()) == "DSSEv1 5 tÿpe 2 é".encode()
    assert pae("", b"") == b"DSSEv1 0  0 "


@pytest.mark.parametrize("algorithm", ["ed25519", "p256"])
def test_json_round_trip_keeps_payload_and_signatures(algorithm: str) -> None:
    key = SigningKey.generate(algorithm)  # type: ignore[arg-type]
    env = Envelope(b'{"a": 1}\x00\xff', "application/x-test")
    env = env.with_signature(EnvelopeSignature(key.key_id, key.sign(env.signed_bytes())))
    back = Envelope.from_json(env.to_json())
    assert back == env
    assert key.public_key.verify(back.signatures[0].sig, back.signed_bytes())


def test_with_signature_replaces_the_same_key_id() -> None:
    env = Envelope(b"x", "t")
    env = env.with_signature(EnvelopeSignature("k1", b"one"))
    env = env.with_signature(EnvelopeSignature("k2", b"two"))
    env = env.with_signature(EnvelopeSignature("k1", b"three"))
    assert [(s.keyid, s.sig) for s in env.signatures] == [("k2", b"two"), ("k1", b"three")]


def _doc(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "payload": base64.b64encode(b"hello").decode(),
        "payloadType": "t",
        "signatures": [{"keyid": "k", "sig": base64.b64encode(b"s").decode()}],
    }
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (json.dumps({**_doc(), "extra": 1}), "unknown field 'extra'"),
        (json.dumps({k: v for k, v in _doc().items() if k != "payloadType"}), "'payloadType'"),
        (json.dumps(_doc(signatures=[{"keyid": "k", "sig": "AA==", "cert": "x"}])), "'cert'"),
        (json.dumps(_doc(signatures=[{"sig": "AA=="}])), "'keyid'"),
        (json.dumps(_doc(signatures=[{"keyid": "", "sig": "AA=="}])), "signatures[0].keyid"),
        (json.dumps(_doc(payload="not base64!")), "'payload' is not valid base64"),
        (json.dumps(_doc(payload="aGVsbG8")), "'payload' is not valid base64"),  # no padding
        (json.dumps(_doc(payload="aGVsbG9=")), "not canonical base64"),  # non-zero pad bits
        (json.dumps(_doc(signatures=[{"keyid": "k", "sig": "-_8="}])), "signatures[0].sig"),
        (json.dumps(_doc(payload=5)), "'payload' must be a base64 string"),
        (json.dumps(_doc(signatures={})), "'signatures' must be a list"),
        (json.dumps(_doc(payloadType=["t"])), "'payloadType' must be a string"),
        (
            '{"payload": "aGVsbG8=", "payload": "aGVsbG8=", "payloadType": "t", "signatures": []}',
            "duplicate JSON key 'payload'",
        ),
        ("[]", "must be a JSON object"),
        ("{", "not valid JSON"),
        ('{"payload": NaN}', "NaN is not valid JSON"),
    ],
)
def test_strict_parsing_names_the_field(text: str, names: str) -> None:
    with pytest.raises(SignatureError) as info:
        Envelope.from_json(text, source="MANIFEST.sig")
    assert names in str(info.value)
    assert str(info.value).startswith("MANIFEST.sig")


def test_a_valid_envelope_parses() -> None:
    env = Envelope.from_json(json.dumps(_doc()))
    assert env.payload == b"hello"
    assert env.signatures == (EnvelopeSignature("k", b"s"),)
