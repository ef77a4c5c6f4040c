"""What a yard accepts: its signing policy, and the check a new version or alias move passes.

A yard can **require** signatures, for every registered model or for some.
Then a version is registered only when it carries a signature (the
``modelyard.signature`` tag) that verifies over exactly its file list, by
keys the *yard* trusts (its own list, kept in the yard, edited by admins),
and that binds no other name; an alias moves only to such a version. The
check runs inside the store's write transaction, before anything is written,
so every path into the yard (the Python API, the server's REST routes,
MLflow's client through the drop-in API, imports) meets the same rule.

The yard's keys decide what the yard *accepts*; they do not make a load
trust anyone: which signers may vouch for code on a machine is that
machine's own trust file (:mod:`modelyard.trust.keys`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from modelyard.errors import SignatureError, SignatureRequired
from modelyard.format.content import ContentManifest, FileEntry
from modelyard.trust.keys import PublicKey, TrustedKey, TrustStore, is_key_id

__all__ = ["SigningPolicy", "admit_signed"]

_FIELDS = frozenset({"version", "require", "keys", "revoked", "threshold"})
_SIGN_HINT = (
    "sign it (log_model/save_model sign by default; `modelyard sign PATH`) with a key the "
    "yard trusts; an admin adds keys with modelyard.trust_signer(PEM, label)"
)


@dataclass(frozen=True)
class SigningPolicy:
    """A yard's signing policy: whether all models require signatures, and whose count.

    ``models`` are the registered models that require signatures on their own
    (``require`` covers every model).
    """

    require: bool = False
    trust: TrustStore = field(default_factory=TrustStore)
    models: tuple[str, ...] = ()

    def requires(self, name: str) -> bool:
        """Whether versions of ``name`` must be signed."""
        return self.require or name in self.models

    def to_document(self) -> dict[str, Any]:
        """The stored form (``models`` are kept beside the models, not here)."""
        return {
            "version": 1,
            "require": self.require,
            "keys": [
                {"label": k.label, "key_id": k.key_id, "public_key": k.public_key.to_pem()}
                for k in self.trust.keys.values()
            ],
            "revoked": sorted(self.trust.revoked),
            "threshold": self.trust.threshold,
        }

    def to_json(self) -> str:
        """``to_document`` as compact JSON."""
        return json.dumps(self.to_document(), separators=(",", ":"))

    @classmethod
    def from_document(
        cls, data: Any, *, source: str = "the yard's signing policy", models: Sequence[str] = ()
    ) -> SigningPolicy:
        """Parse a stored policy strictly: an unknown field or a bad key names itself."""
        if data is None:
            return cls(models=tuple(models))
        if not isinstance(data, Mapping):
            raise SignatureError(f"{source}: must be a mapping")
        unknown = sorted(str(k) for k in data if k not in _FIELDS)
        if unknown:
            raise SignatureError(
                f"{source}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(_FIELDS))})"
            )
        require = data.get("require", False)
        if not isinstance(require, bool):
            raise SignatureError(f"{source}: field 'require' must be true or false")
        store = TrustStore.from_dict(
            {k: v for k, v in data.items() if k != "require"}, source=source
        )
        return cls(require=require, trust=store, models=tuple(models))

    @classmethod
    def from_json(cls, text: str | None, *, models: Sequence[str] = ()) -> SigningPolicy:
        """Parse the stored JSON (``None``: the default, nothing required)."""
        if not text:
            return cls(models=tuple(models))
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SignatureError(f"the yard's signing policy is not valid JSON: {exc}") from None
        return cls.from_document(data, models=models)

    # -- edits: each returns a new policy ----------------------------------------------

    def requiring(self, require: bool) -> SigningPolicy:
        """The same keys; every model requiring signatures or not."""
        return replace(self, require=require)

    def trusting(self, public_key: PublicKey, label: str) -> SigningPolicy:
        """``public_key`` trusted under ``label`` (relabelled if trusted already)."""
        if not label.strip():
            raise SignatureError("a trusted key needs a non-empty label")
        if self.trust.is_revoked(public_key.key_id):
            raise SignatureError(
                f"key {public_key.key_id} was revoked in this yard; a revoked key stays revoked"
            )
        keys = dict(self.trust.keys)
        keys[public_key.key_id] = TrustedKey(public_key, label, "the yard's signing policy")
        return replace(self, trust=replace(self.trust, keys=keys))

    def revoking(self, key_id: str) -> SigningPolicy:
        """``key_id`` revoked: its signatures admit nothing from now on."""
        if not is_key_id(key_id):
            raise SignatureError(f"{key_id!r} is not a key id ('sha256:' + 64 hex digits)")
        keys = {k: v for k, v in self.trust.keys.items() if k != key_id}
        revoked = self.trust.revoked | {key_id}
        return replace(self, trust=replace(self.trust, keys=keys, revoked=revoked))


def admit_signed(
    policy: SigningPolicy,
    *,
    name: str,
    what: str,
    files: Sequence[FileEntry] | None,
    pointer: str | None,
) -> str:
    """Check that ``what`` (a version of ``name``) is signed as ``policy`` requires.

    ``files`` is the version's file list, ``pointer`` its signature tag (the
    envelope's JSON). Returns the id of the key that signed; raises
    :class:`SignatureRequired` naming the model and what to do, or another
    :class:`SignatureError` for a signature that does not hold.
    """
    from modelyard.store.signatures import read_envelope
    from modelyard.trust.signing import verify_envelope

    if not pointer:
        raise SignatureRequired(
            f"{what} is not signed, and {name!r} requires signatures: {_SIGN_HINT}"
        )
    if not files:
        raise SignatureRequired(
            f"{what} has no recorded file list, so its signature cannot be checked, and "
            f"{name!r} requires signatures"
        )
    try:
        envelope = read_envelope(pointer, source="its signature")
        verified = verify_envelope(envelope, ContentManifest(tuple(files)), policy.trust)
    except SignatureError as exc:
        raise SignatureRequired(
            f"{what} is refused, {name!r} requires signatures the yard trusts: {exc}"
        ) from None
    if verified.name is not None and verified.name != name:
        raise SignatureRequired(
            f"{what} is refused: its signature binds it to the name {verified.name!r}, not {name!r}"
        )
    return verified.key_id
