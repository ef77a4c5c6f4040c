"""Signatures of versions and logged models, kept in the yard beside them.

A signature covers a model's content manifest, so it is not one of the
model's files: the yard keeps the DSSE envelope (JSON) in a tag,
``modelyard.signature`` on a version and ``modelyard.signature.<path>`` on the
run that logged the model. A tag needs no blob access of its own, so whoever
may read the version may read its signature, on every kind of yard; the
envelope is verified at load against the files, so a forged tag proves nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.errors import ModelNotFound

if TYPE_CHECKING:
    from modelyard.loading.resolve import ModelRef
    from modelyard.trust.dsse import Envelope

VERSION_TAG = "modelyard.signature"
RUN_TAG_PREFIX = "modelyard.signature."


def run_tag(artifact_path: str) -> str:
    """The run tag that points to the signature of the model logged at ``artifact_path``."""
    return RUN_TAG_PREFIX + artifact_path


def read_envelope(text: str, *, source: str) -> Envelope:
    """The envelope a tag holds; anything malformed is a SignatureError naming ``source``."""
    from modelyard.trust.dsse import Envelope

    return Envelope.from_json(text, source=source)


def signature_for(ref: ModelRef) -> Envelope | None:
    """The yard's signature for the version or logged model ``ref`` resolved to."""
    yard = ref.yard
    if yard is None:
        return None
    reader = yard.reader()
    pointer: str | None = None
    try:
        if ref.name is not None and ref.version is not None:
            pointer = reader.get_model_version(ref.name, ref.version).tags.get(VERSION_TAG)
        elif ref.run_id is not None:
            path = getattr(ref.target, "path", None)
            if path:
                tags = reader.get_run(ref.run_id).tags
                pointer = tags.get(run_tag(str(path).strip("/")))
    except ModelNotFound:
        return None
    if not pointer:
        return None
    return read_envelope(pointer, source=f"the signature tag of {ref.uri}")


def pointer_from_directory(root: Path) -> str | None:
    """The tag value for ``root/MANIFEST.sig`` (the envelope's JSON), or ``None`` if unsigned."""
    from modelyard.trust.signing import SIGNATURE_FILE

    file = root / SIGNATURE_FILE
    if not file.is_file():
        return None
    text = file.read_text(encoding="utf-8")
    read_envelope(text, source=str(file))  # a malformed file is refused, not stored
    return text
