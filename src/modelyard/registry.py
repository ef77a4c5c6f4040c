"""The model registry: named models, immutable versions pinned to digests, and aliases.

>>> import modelyard as my
>>> v = my.register_model("runs:/<run_id>/model", "fraud")   # doctest: +SKIP
>>> my.set_alias("fraud", "champion", v.version)             # doctest: +SKIP
>>> my.load_model("models:/fraud@champion")                  # doctest: +SKIP

Every call works on the yard in use (:func:`modelyard.get_yard`). Names,
aliases and tag keys are validated here (no ``/``, ``..``, ``:`` or control
characters; ``latest`` and ``v<digits>`` are reserved aliases). A version's
files are always in the yard's own blob store: registering a local directory
copies it in first, and the recorded ``source`` is a yard URI (``runs:/...``,
``models:/...``) or the digest itself, never a path outside the yard.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from modelyard.errors import (
    AliasNotFound,
    ArtifactNotFound,
    MLmodelNotFound,
    ModelNotFound,
    ModelyardError,
)
from modelyard.store.entities import AliasChange, ModelVersion, RegisteredModel, to_millis
from modelyard.uri import ModelsURI, PathURI, RunsURI, parse_uri, validate_alias, validate_name
from modelyard.yard import Yard, get_yard

if TYPE_CHECKING:
    from pathlib import Path

    from modelyard.format.content import FileEntry
    from modelyard.store import MetadataStore
    from modelyard.trust.admission import SigningPolicy
    from modelyard.trust.keys import PublicKey, SigningKey

__all__ = [
    "create_registered_model",
    "delete_alias",
    "delete_model_version",
    "delete_model_version_tag",
    "delete_registered_model",
    "delete_registered_model_tag",
    "get_alias_history",
    "get_model_version",
    "get_model_version_by_alias",
    "get_registered_model",
    "get_signing_policy",
    "register_model",
    "rename_registered_model",
    "require_signatures",
    "revoke_signer",
    "search_model_versions",
    "search_registered_models",
    "set_alias",
    "set_model_version_tag",
    "set_registered_model_tag",
    "trust_signer",
    "update_model_version",
    "update_registered_model",
]

logger = logging.getLogger("modelyard")
#: signed alias moves retried when a concurrent move took their sequence
_ALIAS_RETRIES = 20

_MLMODEL = "MLmodel"


def current_user() -> str | None:
    """Who is acting: ``MODELYARD_USER``, else the login name (recorded with changes)."""
    user = os.environ.get("MODELYARD_USER")
    if user:
        return user
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no LOGNAME
        return None


# -- registered models --------------------------------------------------------------


def create_registered_model(
    name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
) -> RegisteredModel:
    """Create an empty registered model; :class:`AlreadyExists` if the name is taken.

    ``register_model`` creates the model on its first version, so this is only
    needed to set a description or tags up front.
    """
    return get_yard().metadata.create_registered_model(
        validate_name(name), description=description, tags=_tags(tags)
    )


def get_registered_model(name: str) -> RegisteredModel:
    """One registered model with its tags, aliases and latest version number.

    >>> get_registered_model("frod")  # doctest: +SKIP
    RegisteredModelNotFound: no registered model 'frod'; did you mean 'fraud'?
    """
    return get_yard().reader().get_registered_model(validate_name(name))


def search_registered_models(
    filter_string: str | None = None,
    *,
    order_by: Sequence[str] | None = None,
    max_results: int = 100,
) -> list[RegisteredModel]:
    """Registered models matching ``filter_string``, by name unless ``order_by`` says.

    >>> search_registered_models("name LIKE 'fr%' AND tags.team = 'risk'")  # doctest: +SKIP
    """
    return (
        get_yard()
        .reader()
        .search_registered_models(filter_string, order_by=order_by, max_results=max_results)
    )


def rename_registered_model(name: str, new_name: str) -> RegisteredModel:
    """Rename a model; its versions, aliases and alias history follow it."""
    return get_yard().metadata.rename_registered_model(validate_name(name), validate_name(new_name))


def update_registered_model(name: str, *, description: str | None) -> RegisteredModel:
    """Set (or clear, with ``None``) a registered model's description."""
    return get_yard().metadata.update_registered_model(validate_name(name), description)


def delete_registered_model(name: str) -> None:
    """Delete a model with its versions, aliases and history (blobs stay: they may be shared)."""
    get_yard().metadata.delete_registered_model(validate_name(name))


def set_registered_model_tag(name: str, key: str, value: str) -> None:
    """Set (or replace) a tag on a registered model."""
    get_yard().metadata.set_registered_model_tag(
        validate_name(name), validate_name(key, "tag key"), str(value)
    )


def delete_registered_model_tag(name: str, key: str) -> None:
    """Remove a tag from a registered model (nothing happens if it is absent)."""
    get_yard().metadata.delete_registered_model_tag(
        validate_name(name), validate_name(key, "tag key")
    )


# -- versions -------------------------------------------------------------------------


def register_model(
    model_uri: str | os.PathLike[str],
    name: str,
    *,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    yard: Yard | None = None,
) -> ModelVersion:
    """A new version of ``name`` (created if needed) holding the model at ``model_uri``.

    ``model_uri`` is ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``
    (or ``@alias``, ``/latest``), or a local model directory, which is copied
    into the yard's blob store first (verified against its ``MANIFEST.sha256``
    if it has one). The version is pinned to the directory's digest and never
    changes afterwards. ``yard`` registers in that yard rather than the one in use.

    >>> register_model("runs:/4f1c.../model", "fraud").version  # doctest: +SKIP
    3
    """
    from modelyard.store.signatures import VERSION_TAG, pointer_from_directory, run_tag

    name = validate_name(name)
    yard = yard or get_yard()
    store = yard.metadata
    target = parse_uri(model_uri)
    run_id: str | None = None
    signature: str | None = None  # the tag pointing to the version's signature, if signed
    if isinstance(target, PathURI):
        from modelyard.store.trees import store_directory

        path = target.path.expanduser()
        if not path.is_dir():
            raise ModelNotFound(str(model_uri), f"no model directory at {str(path)!r}")
        if not (path / _MLMODEL).is_file():
            raise MLmodelNotFound(path)
        signature = pointer_from_directory(path)
        _check_signed(store, name, lambda: _listed_files(path), signature)
        manifest = store_directory(yard.artifacts, path)
        digest = source = manifest.digest
    elif isinstance(target, RunsURI):
        from modelyard.store.trees import run_tree, store_manifest

        manifest = run_tree(store, target.run_id, target.path, uri=str(model_uri))
        if _MLMODEL not in {e.path for e in manifest.entries}:
            raise MLmodelNotFound(str(target))
        signature = store.get_run(target.run_id).tags.get(run_tag(target.path.strip("/")))
        _check_signed(store, name, lambda: manifest.entries, signature)
        digest = store_manifest(yard.artifacts, manifest)
        source, run_id = str(target), target.run_id
    elif isinstance(target, ModelsURI):
        resolved = store.resolve(
            target.name,
            version=None if target.latest else target.version,
            alias=target.alias,
        )
        from modelyard.store.trees import read_manifest, store_manifest, subtree

        run_id = resolved.run_id
        source = f"models:/{resolved.name}/{resolved.version}"
        manifest = read_manifest(yard.artifacts, resolved.digest)
        digest = resolved.digest
        signature = store.get_model_version(resolved.name, resolved.version).tags.get(VERSION_TAG)
        if target.subpath:
            manifest = subtree(manifest, target.subpath)
            if not manifest.entries:
                raise ArtifactNotFound(source, target.subpath, uri=str(model_uri))
            digest = store_manifest(yard.artifacts, manifest)
            source = f"{source}/{target.subpath}"
            signature = None  # a part of a model is not what was signed
            _check_signed(store, name, lambda: manifest.entries, signature)
    else:  # pragma: no cover - parse_uri returns one of the above
        raise AssertionError(target)
    return store.create_model_version(
        name,
        digest=digest,
        source=source,
        run_id=run_id,
        description=description,
        tags=_tags({**(tags or {}), **({VERSION_TAG: signature} if signature else {})}),
        created_by=current_user(),
        files=manifest.entries,
    )


def get_model_version(name: str, version: int | str) -> ModelVersion:
    """One version; :class:`ModelVersionNotFound` lists the versions there are."""
    return get_yard().reader().get_model_version(validate_name(name), _version(version))


def get_model_version_by_alias(
    name: str, alias: str, *, at: _dt.datetime | None = None
) -> ModelVersion:
    """The version ``alias`` points at now, or pointed at ``at`` a past time.

    >>> get_model_version_by_alias("fraud", "champion").version                 # doctest: +SKIP
    7
    >>> get_model_version_by_alias("fraud", "champion", at=datetime(2026, 3, 1))  # doctest: +SKIP
    """
    name, alias = validate_name(name), validate_alias(alias)
    store = get_yard().reader()
    if at is None:
        return store.get_model_version_by_alias(name, alias)
    when = to_millis(at)
    version: int | None = None
    for change in store.get_alias_history(name, alias):
        if to_millis(change.changed_at) > when:
            break
        version = change.to_version
    if version is None:
        model = store.get_registered_model(name)
        raise AliasNotFound(
            name, alias, aliases=model.aliases, uri=f"models:/{name}@{alias} at {at.isoformat()}"
        )
    return store.get_model_version(name, version)


def search_model_versions(
    filter_string: str | None = None,
    *,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
) -> list[ModelVersion]:
    """Versions matching ``filter_string``: by name, newest first unless ``order_by`` says.

    >>> search_model_versions("name = 'fraud' AND tags.validated = 'yes'")  # doctest: +SKIP
    >>> search_model_versions(f"run_id = '{run_id}'")                        # doctest: +SKIP
    """
    return (
        get_yard()
        .reader()
        .search_model_versions(filter_string, order_by=order_by, max_results=max_results)
    )


def update_model_version(name: str, version: int | str, *, description: str | None) -> ModelVersion:
    """Set (or clear) a version's description; its files never change."""
    return get_yard().metadata.update_model_version(
        validate_name(name), _version(version), description
    )


def delete_model_version(name: str, version: int | str) -> None:
    """Delete a version and the aliases on it; its number is never given out again."""
    get_yard().metadata.delete_model_version(
        validate_name(name), _version(version), user=current_user()
    )


def set_model_version_tag(name: str, version: int | str, key: str, value: str) -> None:
    """Set (or replace) a tag on a version."""
    get_yard().metadata.set_model_version_tag(
        validate_name(name), _version(version), validate_name(key, "tag key"), str(value)
    )


def delete_model_version_tag(name: str, version: int | str, key: str) -> None:
    """Remove a tag from a version (nothing happens if it is absent)."""
    get_yard().metadata.delete_model_version_tag(
        validate_name(name), _version(version), validate_name(key, "tag key")
    )


# -- aliases ----------------------------------------------------------------------------


def set_alias(
    name: str, alias: str, version: int | str, *, sign: bool | str | SigningKey | None = None
) -> None:
    """Point ``alias`` at ``version`` of ``name`` (moving it if it exists), atomically.

    Every move is recorded with who and when: see :func:`get_alias_history`. The
    move is also a signed record (:mod:`modelyard.trust.alias_records`) made with
    your default key, as ``save_model`` signs: loaders that trust the key refuse
    an older record of the alias than one they have seen. ``sign=False`` moves it
    unsigned (refused where the model requires signatures), a key name or
    :class:`~modelyard.trust.keys.SigningKey` signs with that key.

    >>> set_alias("fraud", "champion", 7)  # doctest: +SKIP
    """
    from modelyard.errors import StaleAliasRecord

    name, alias, number = validate_name(name), validate_alias(alias), _version(version)
    store = get_yard().metadata
    key = _alias_key(sign, name, alias)
    for attempt in range(_ALIAS_RETRIES):
        record = _alias_record(store, key, name, alias, number) if key is not None else None
        try:
            store.set_alias(name, alias, number, user=current_user(), record=record)
            return
        except StaleAliasRecord:
            # another move took this sequence first: sign the next one and try again
            if attempt == _ALIAS_RETRIES - 1:
                raise


def delete_alias(name: str, alias: str) -> None:
    """Remove ``alias`` from ``name``; :class:`AliasNotFound` lists the aliases it has."""
    get_yard().metadata.delete_alias(
        validate_name(name), validate_alias(alias), user=current_user()
    )


def get_alias_history(name: str, alias: str) -> list[AliasChange]:
    """Every move of ``alias`` on ``name``, oldest first: who, when, from and to which version.

    >>> [(c.from_version, c.to_version) for c in get_alias_history("fraud", "champion")]
    ... # doctest: +SKIP
    [(None, 1), (1, 3), (3, None)]
    """
    return get_yard().reader().get_alias_history(validate_name(name), validate_alias(alias))


# -- signing policy -----------------------------------------------------------------------


def get_signing_policy() -> SigningPolicy:
    """The yard's signing policy: whether (and for which models) versions must be signed,
    and the keys whose signatures the yard accepts.

    >>> get_signing_policy().requires("fraud")  # doctest: +SKIP
    True
    """
    from modelyard.errors import YardNotFound

    try:
        return get_yard().reader().get_signing_policy()
    except YardNotFound:  # nothing there yet, so nothing required yet
        from modelyard.trust.admission import SigningPolicy

        return SigningPolicy()


def require_signatures(name: str | None = None, *, required: bool = True) -> SigningPolicy:
    """Require signed versions for model ``name``, or for every model when ``name`` is None.

    From then on a version is registered, and an alias moved to it, only if a
    key the yard trusts (:func:`trust_signer`) signed exactly its files;
    versions already there are kept. ``required=False`` lifts the rule (a
    model's own rule cannot lift the yard-wide one). On a server the yard-wide
    rule is an admin's, a model's needs ``manage`` on it.

    >>> require_signatures("fraud")  # doctest: +SKIP
    """
    store = get_yard().metadata
    if name is None:
        return store.set_signing_policy(store.get_signing_policy().requiring(required))
    store.require_model_signatures(validate_name(name), required)
    return store.get_signing_policy()


def trust_signer(public_key: str | bytes | PublicKey, label: str) -> SigningPolicy:
    """Accept signatures by ``public_key`` (PEM, or a :class:`PublicKey`) in this yard.

    This decides what the yard admits; it does not make any machine trust the
    key for loading code (that is ``modelyard keys trust`` there).

    >>> trust_signer(Path("alice.pub").read_text(), "alice")  # doctest: +SKIP
    """
    from modelyard.trust.keys import PublicKey

    key = public_key if isinstance(public_key, PublicKey) else PublicKey.from_pem(public_key)
    store = get_yard().metadata
    return store.set_signing_policy(store.get_signing_policy().trusting(key, label))


def revoke_signer(key_id: str) -> SigningPolicy:
    """Stop accepting signatures by ``key_id`` in this yard, for good."""
    store = get_yard().metadata
    return store.set_signing_policy(store.get_signing_policy().revoking(key_id))


# -- helpers ------------------------------------------------------------------------------


def _alias_key(sign: bool | str | SigningKey | None, name: str, alias: str) -> SigningKey | None:
    """The key ``set_alias(sign=)`` asks for; ``None``: move unsigned."""
    if sign is False:
        return None
    from modelyard.trust.keys import SigningKey, default_key, load_signing_key

    try:
        if isinstance(sign, SigningKey):
            return sign
        if isinstance(sign, str):
            return load_signing_key(sign)
        return default_key(create=True)
    except (ModelyardError, OSError) as exc:
        if sign is not None:
            raise
        # as save_model: signing by default must not cost anyone a move they could make
        logger.warning("moving @%s of %r unsigned: no signing key (%s)", alias, name, exc)
        return None


def _alias_record(
    store: MetadataStore, key: SigningKey, name: str, alias: str, version: int
) -> str | None:
    """The record of moving ``name@alias`` to ``version`` signed by ``key`` with the
    alias's next sequence; ``None`` for a yard that keeps no records."""
    position = store.alias_sequence(name, alias)
    if position.yard_id is None:
        return None
    from modelyard.trust.alias_records import AliasRecord, sign_record

    record = AliasRecord.now(
        yard=position.yard_id,
        model=name,
        alias=alias,
        version=version,
        digest=store.resolve(name, version=version).digest,
        sequence=position.sequence + 1,
    )
    return sign_record(record, key).to_json()


def _check_signed(
    store: MetadataStore,
    name: str,
    files: Callable[[], Sequence[FileEntry]],
    pointer: str | None,
) -> None:
    # The store checks again in its write transaction; checking here first means a
    # refused model is not copied into the yard's blob store at all.
    policy = store.get_signing_policy()
    if policy.requires(name):
        from modelyard.trust.admission import admit_signed

        admit_signed(
            policy, name=name, what=f"the new version of {name!r}", files=files(), pointer=pointer
        )


def _listed_files(path: Path) -> Sequence[FileEntry]:
    from modelyard.format.content import ContentManifest

    manifest = ContentManifest.read(path) or ContentManifest.build(path)
    return manifest.entries


def _version(version: int | str) -> int:
    text = str(version)
    if isinstance(version, bool) or not text.isdigit() or int(text) < 1:
        raise ValueError(f"version must be a positive integer, got {version!r}")
    return int(text)


def _tags(tags: Mapping[str, str] | None) -> dict[str, str] | None:
    if not tags:
        return None
    return {validate_name(k, "tag key"): str(v) for k, v in tags.items()}
