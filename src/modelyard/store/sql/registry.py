"""Registry queries: registered models, versions, aliases and their history."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard.errors import (
    AliasNotFound,
    AlreadyExists,
    ModelVersionNotFound,
    RegisteredModelNotFound,
)
from modelyard.format.content import FileEntry
from modelyard.store.entities import (
    AliasChange,
    ModelVersion,
    RegisteredModel,
    ResolvedVersion,
    from_millis,
    now_millis,
)
from modelyard.store.filters import Condition, Fields, OrderKey, parse_filter, parse_order_by
from modelyard.store.sql._sql import (
    close_matches,
    compare,
    insert_ignore,
    key_values,
    keyed_exists,
    upsert,
)
from modelyard.store.sql.alias_records import (
    carry_over,
    record_move,
    record_removal,
    stored_yard_id,
)
from modelyard.store.sql.auth import visible_model
from modelyard.store.sql.engine import Database
from modelyard.store.sql.schema import (
    alias_history,
    alias_records,
    model_aliases,
    model_grants,
    model_tags,
    model_versions,
    protected_aliases,
    registered_models,
    version_files,
    version_tags,
)
from modelyard.store.sql.signing import check_alias_target, check_tag_change, check_version

__all__ = ["MODEL_FIELDS", "VERSION_FIELDS", "RegistryQueries"]

READY = "READY"

MODEL_FIELDS = Fields(
    attributes={
        "name": "string",
        "description": "string",
        "creation_timestamp": "number",
        "last_updated_timestamp": "number",
        "created_at": "number",
        "updated_at": "number",
    },
    entities=frozenset({"attribute", "tag"}),
)
VERSION_FIELDS = Fields(
    attributes={
        "name": "string",
        "version": "number",
        "version_number": "number",
        "run_id": "string",
        "source": "string",
        "source_path": "string",
        "digest": "string",
        "status": "string",
        "description": "string",
        "creation_timestamp": "number",
        "last_updated_timestamp": "number",
        "created_at": "number",
        "updated_at": "number",
        "created_by": "string",
    },
    entities=frozenset({"attribute", "tag"}),
)

_M = registered_models.c
_V = model_versions.c
_MODEL_COLUMNS = {
    "name": _M.name,
    "description": _M.description,
    "creation_timestamp": _M.created_at,
    "created_at": _M.created_at,
    "last_updated_timestamp": _M.updated_at,
    "updated_at": _M.updated_at,
}
_VERSION_COLUMNS = {
    "name": _M.name,
    "version": _V.version,
    "version_number": _V.version,
    "run_id": _V.run_id,
    "source": _V.source,
    "source_path": _V.source,
    "digest": _V.digest,
    "status": _V.status,
    "description": _V.description,
    "creation_timestamp": _V.created_at,
    "created_at": _V.created_at,
    "last_updated_timestamp": _V.updated_at,
    "updated_at": _V.updated_at,
    "created_by": _V.created_by,
}
_VERSION_SELECT = (
    _M.name,
    _V.model_id,
    _V.version,
    _V.digest,
    _V.source,
    _V.run_id,
    _V.status,
    _V.description,
    _V.created_at,
    _V.updated_at,
    _V.created_by,
)


class RegistryQueries:
    """The registry half of the SQL metadata store."""

    db: Database

    # -- registered models -----------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        exist_ok: bool = False,
    ) -> RegisteredModel:
        """Create a registered model; :class:`AlreadyExists` unless ``exist_ok``."""
        now = now_millis()
        with self.db.write() as conn:
            row = {"name": name, "description": description, "created_at": now, "updated_at": now}
            inserted = insert_ignore(conn, registered_models, row, ["name"])
            if not inserted and not exist_ok:
                raise AlreadyExists("registered model", name)
            if inserted and tags:
                model_id = self._model_id(conn, name)
                upsert(
                    conn,
                    model_tags,
                    [{"model_id": model_id, "key": k, "value": v} for k, v in tags.items()],
                    ["model_id", "key"],
                    ["value"],
                )
        return self.get_registered_model(name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """One registered model; :class:`RegisteredModelNotFound` suggests close names."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(registered_models).where(_M.name == name)).first()
            if row is None:
                raise self._model_not_found(conn, name)
            return self._models(conn, [row])[0]

    def search_registered_models(
        self,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        *,
        offset: int = 0,
        visible_to: int | None = None,
    ) -> list[RegisteredModel]:
        """Registered models matching ``filter_string``, by name unless ``order_by`` says.

        ``visible_to`` (a user id) leaves out models hidden from that user, in the query
        itself, so a page is always full; ``offset`` skips that many matches.
        """
        conds = parse_filter(filter_string, MODEL_FIELDS)
        keys = parse_order_by(order_by, MODEL_FIELDS)
        query = sa.select(registered_models)
        for cond in conds:
            query = query.where(self._model_condition(cond))
        if visible_to is not None:
            query = query.where(visible_model(visible_to))
        ordering = [_order(_MODEL_COLUMNS[k.key], k) for k in keys if k.entity == "attribute"]
        query = query.order_by(*ordering, _M.name).limit(max_results).offset(offset)
        with self.db.read() as conn:
            return self._models(conn, list(conn.execute(query)))

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Give a registered model a new name; versions, aliases and history follow."""
        with self.db.write() as conn:
            try:
                with conn.begin_nested():
                    result = conn.execute(
                        sa.update(registered_models)
                        .where(_M.name == name)
                        .values(name=new_name, updated_at=now_millis())
                    )
            except sa.exc.IntegrityError:
                raise AlreadyExists("registered model", new_name) from None
            if not result.rowcount:
                raise self._model_not_found(conn, name)
            model_id = conn.execute(sa.select(_M.model_id).where(_M.name == new_name)).scalar()
            carry_over(conn, int(model_id or 0), name, new_name)
        return self.get_registered_model(new_name)

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Set a registered model's description."""
        with self.db.write() as conn:
            result = conn.execute(
                sa.update(registered_models)
                .where(_M.name == name)
                .values(description=description, updated_at=now_millis())
            )
            if not result.rowcount:
                raise self._model_not_found(conn, name)
        return self.get_registered_model(name)

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with its versions, tags, aliases and history."""
        with self.db.write() as conn:
            model_id = self._model_id(conn, name)
            # Explicit child deletes: correct even where foreign keys are not enforced.
            for table in (
                alias_history,
                model_aliases,
                version_tags,
                version_files,
                model_versions,
                model_tags,
                model_grants,
                protected_aliases,
            ):
                conn.execute(sa.delete(table).where(table.c.model_id == model_id))
            conn.execute(sa.delete(registered_models).where(_M.model_id == model_id))

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set (or replace) a tag on a registered model."""
        with self.db.write() as conn:
            model_id = self._touch_model(conn, name)
            upsert(
                conn,
                model_tags,
                [{"model_id": model_id, "key": key, "value": value}],
                ["model_id", "key"],
                ["value"],
            )

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model (no error if it is absent)."""
        with self.db.write() as conn:
            model_id = self._touch_model(conn, name)
            conn.execute(
                sa.delete(model_tags).where(
                    model_tags.c.model_id == model_id, model_tags.c.key == key
                )
            )

    # -- versions ----------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        *,
        digest: str,
        source: str,
        run_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        created_by: str | None = None,
        files: Sequence[FileEntry] | None = None,
    ) -> ModelVersion:
        """The next version of ``name`` (the model is created if missing), pinned to ``digest``.

        ``files`` is the version's file list (its content manifest), recorded beside it.
        """
        now = now_millis()
        with self.db.write() as conn:
            model_id, after = self._lock_model(conn, name, now, take_number=True)
            version = after - 1
            check_version(conn, model_id, name, version, tags=tags, files=files)
            self._insert_version(
                conn,
                model_id,
                version,
                digest=digest,
                source=source,
                run_id=run_id,
                description=description,
                tags=tags,
                created_by=created_by,
                files=files,
                when=now,
            )
        when = from_millis(now)
        assert when is not None
        return ModelVersion(
            name=name,
            version=version,
            digest=digest,
            source=source,
            run_id=run_id,
            status=READY,
            description=description,
            created_at=when,
            updated_at=when,
            created_by=created_by,
            tags=dict(tags or {}),
        )

    def import_model_version(
        self,
        name: str,
        version: int,
        *,
        digest: str,
        source: str,
        run_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        created_by: str | None = None,
        files: Sequence[FileEntry] | None = None,
        created_at: int | None = None,
    ) -> ModelVersion:
        """Version ``version`` of ``name`` with exactly that number (a migration keeps numbers).

        Idempotent: when the version exists with ``digest`` it is returned unchanged. A
        number below the next free one that is absent (deleted, or never given out) is
        refused, as is an existing version with other files: numbers are never reused.
        ``created_at`` (ms since the epoch) keeps the original creation time.
        """
        now = now_millis()
        with self.db.write() as conn:
            model_id, next_version = self._lock_model(conn, name, now, take_number=False)
            held = conn.execute(
                sa.select(_V.digest).where(_V.model_id == model_id, _V.version == version)
            ).first()
            if held is not None:
                if held.digest != digest:
                    raise AlreadyExists(
                        "model version", f"{name}/{version} with other files ({held.digest})"
                    )
            elif version < int(next_version):
                raise AlreadyExists(
                    "model version number", f"{name}/{version} (given out before; never reused)"
                )
            else:
                check_version(conn, model_id, name, version, tags=tags, files=files)
                conn.execute(
                    sa.update(registered_models)
                    .where(_M.model_id == model_id)
                    .values(next_version=version + 1)
                )
                self._insert_version(
                    conn,
                    model_id,
                    version,
                    digest=digest,
                    source=source,
                    run_id=run_id,
                    description=description,
                    tags=tags,
                    created_by=created_by,
                    files=files,
                    when=created_at if created_at is not None else now,
                )
        return self.get_model_version(name, version)

    def resolve(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> ResolvedVersion:
        """Name + version, name + alias, or the latest version: one indexed query."""
        r = alias_records.c
        columns = [_M.name, _V.version, _V.digest, _V.run_id]
        query = sa.select(*columns, r.record if alias is not None else sa.null()).join_from(
            registered_models, model_versions, _V.model_id == _M.model_id
        )
        query = query.where(_M.name == name)
        if alias is not None:
            a = model_aliases.c
            query = (
                query.join(
                    model_aliases, sa.and_(a.model_id == _V.model_id, a.version == _V.version)
                )
                .outerjoin(alias_records, sa.and_(r.model_name == _M.name, r.alias == a.alias))
                .where(a.alias == alias)
            )
        elif version is not None:
            query = query.where(_V.version == version)
        else:
            query = query.order_by(_V.version.desc()).limit(1)
        with self.db.read() as conn:
            row = conn.execute(query).first()
            if row is None:
                raise self._version_not_found(conn, name, version, alias)
            record = row[4]
            # the yard's id matters only beside a record (one indexed lookup more)
            yard_id = stored_yard_id(conn) if record is not None else None
        return ResolvedVersion(row.name, int(row.version), row.digest, row.run_id, record, yard_id)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version; :class:`ModelVersionNotFound` lists the versions there are."""
        query = (
            sa.select(*_VERSION_SELECT)
            .join_from(registered_models, model_versions, _V.model_id == _M.model_id)
            .where(_M.name == name, _V.version == version)
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
            if row is None:
                raise self._version_not_found(conn, name, version, None)
            return self._versions(conn, [row])[0]

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at; :class:`AliasNotFound` lists the model's aliases."""
        a = model_aliases.c
        query = (
            sa.select(*_VERSION_SELECT)
            .join_from(registered_models, model_versions, _V.model_id == _M.model_id)
            .join(model_aliases, sa.and_(a.model_id == _V.model_id, a.version == _V.version))
            .where(_M.name == name, a.alias == alias)
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
            if row is None:
                raise self._version_not_found(conn, name, None, alias)
            return self._versions(conn, [row])[0]

    def search_model_versions(
        self,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        *,
        offset: int = 0,
        visible_to: int | None = None,
    ) -> list[ModelVersion]:
        """Versions matching ``filter_string``; by name, newest version first by default.

        ``visible_to`` and ``offset`` as for :meth:`search_registered_models`.
        """
        conds = parse_filter(filter_string, VERSION_FIELDS)
        keys = parse_order_by(order_by, VERSION_FIELDS)
        query = sa.select(*_VERSION_SELECT).join_from(
            registered_models, model_versions, _V.model_id == _M.model_id
        )
        for cond in conds:
            query = query.where(self._version_condition(cond))
        if visible_to is not None:
            query = query.where(visible_model(visible_to))
        ordering = [_order(_VERSION_COLUMNS[k.key], k) for k in keys if k.entity == "attribute"]
        query = (
            query.order_by(*ordering, _M.name, _V.version.desc()).limit(max_results).offset(offset)
        )
        with self.db.read() as conn:
            return self._versions(conn, list(conn.execute(query)))

    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion:
        """Set a version's description."""
        with self.db.write() as conn:
            model_id = self._model_id(conn, name)
            result = conn.execute(
                sa.update(model_versions)
                .where(_V.model_id == model_id, _V.version == version)
                .values(description=description, updated_at=now_millis())
            )
            if not result.rowcount:
                raise self._version_not_found(conn, name, version, None)
        return self.get_model_version(name, version)

    def delete_model_version(self, name: str, version: int, *, user: str | None = None) -> None:
        """Delete a version and the aliases on it (recorded in their history)."""
        now = now_millis()
        with self.db.write() as conn:
            model_id = self._touch_model(conn, name, now)
            exists = conn.execute(
                sa.select(_V.version).where(_V.model_id == model_id, _V.version == version)
            ).first()
            if exists is None:
                raise self._version_not_found(conn, name, version, None)
            a = model_aliases.c
            held = [
                r.alias
                for r in conn.execute(
                    sa.select(a.alias).where(a.model_id == model_id, a.version == version)
                )
            ]
            for alias in held:
                self._record(
                    conn, model_id=model_id, alias=alias, old=version, new=None, now=now, user=user
                )
            conn.execute(
                sa.delete(model_aliases).where(a.model_id == model_id, a.version == version)
            )
            for table in (version_tags, version_files):
                conn.execute(
                    sa.delete(table).where(table.c.model_id == model_id, table.c.version == version)
                )
            conn.execute(
                sa.delete(model_versions).where(_V.model_id == model_id, _V.version == version)
            )

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Set (or replace) a tag on a version."""
        with self.db.write() as conn:
            model_id = self._version_key(conn, name, version)
            check_tag_change(conn, model_id, name, version, key=key, value=value)
            upsert(
                conn,
                version_tags,
                [{"model_id": model_id, "version": version, "key": key, "value": value}],
                ["model_id", "version", "key"],
                ["value"],
            )

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        """Remove a tag from a version (no error if it is absent)."""
        with self.db.write() as conn:
            model_id = self._version_key(conn, name, version)
            check_tag_change(conn, model_id, name, version, key=key, value=None)
            t = version_tags.c
            conn.execute(
                sa.delete(version_tags).where(
                    t.model_id == model_id, t.version == version, t.key == key
                )
            )

    # -- aliases -----------------------------------------------------------------

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        user: str | None = None,
        record: str | None = None,
    ) -> None:
        """Point ``alias`` at ``version`` (one upsert) and record the move (and its
        signed ``record``, checked first: see :func:`~.alias_records.record_move`)."""
        now = now_millis()
        with self.db.write() as conn:
            # Locking the model row orders concurrent moves, so each history
            # entry's "from" is the version the alias really left.
            model_id = self._touch_model(conn, name, now)
            exists = conn.execute(
                sa.select(_V.version).where(_V.model_id == model_id, _V.version == version)
            ).first()
            if exists is None:
                raise self._version_not_found(conn, name, version, None)
            a = model_aliases.c
            old = conn.execute(
                sa.select(a.version).where(a.model_id == model_id, a.alias == alias)
            ).scalar()
            if old == version:
                return
            check_alias_target(conn, model_id, name, alias, version)
            record_move(conn, model_id, name, alias, version, record=record)
            upsert(
                conn,
                model_aliases,
                [{"model_id": model_id, "alias": alias, "version": version}],
                ["model_id", "alias"],
                ["version"],
            )
            self._record(
                conn, model_id=model_id, alias=alias, old=old, new=version, now=now, user=user
            )

    def delete_alias(self, name: str, alias: str, *, user: str | None = None) -> None:
        """Remove ``alias``; :class:`AliasNotFound` (listing the aliases) if it does not exist."""
        now = now_millis()
        with self.db.write() as conn:
            model_id = self._touch_model(conn, name, now)
            a = model_aliases.c
            old = conn.execute(
                sa.delete(model_aliases)
                .where(a.model_id == model_id, a.alias == alias)
                .returning(a.version)
            ).scalar()
            if old is None:
                raise self._version_not_found(conn, name, None, alias)
            record_removal(conn, name, alias)
            self._record(
                conn, model_id=model_id, alias=alias, old=old, new=None, now=now, user=user
            )

    def get_alias_history(self, name: str, alias: str) -> list[AliasChange]:
        """Every move of ``alias``, oldest first; :class:`AliasNotFound` if it never existed."""
        h = alias_history.c
        with self.db.read() as conn:
            model_id = self._model_id(conn, name)
            rows = list(
                conn.execute(
                    sa.select(alias_history)
                    .where(h.model_id == model_id, h.alias == alias)
                    .order_by(h.change_id)
                )
            )
            if not rows:
                raise self._version_not_found(conn, name, None, alias)
        out = []
        for r in rows:
            when = from_millis(r.changed_at)
            assert when is not None
            out.append(AliasChange(name, alias, r.from_version, r.to_version, when, r.changed_by))
        return out

    # -- helpers -------------------------------------------------------------------

    def _insert_version(
        self,
        conn: Connection,
        model_id: int,
        version: int,
        *,
        digest: str,
        source: str,
        run_id: str | None,
        description: str | None,
        tags: Mapping[str, str] | None,
        created_by: str | None,
        files: Sequence[FileEntry] | None,
        when: int,
    ) -> None:
        conn.execute(
            sa.insert(model_versions).values(
                model_id=model_id,
                version=version,
                digest=digest,
                source=source,
                run_id=run_id,
                status=READY,
                description=description,
                created_at=when,
                updated_at=when,
                created_by=created_by,
            )
        )
        if tags:
            conn.execute(
                sa.insert(version_tags),
                [
                    {"model_id": model_id, "version": version, "key": k, "value": v}
                    for k, v in tags.items()
                ],
            )
        if files:
            conn.execute(
                sa.insert(version_files),
                [
                    {
                        "model_id": model_id,
                        "version": version,
                        "path": f.path,
                        "size": f.size,
                        "sha256": f.sha256,
                    }
                    for f in files
                ],
            )

    def _lock_model(
        self, conn: Connection, name: str, now: int, *, take_number: bool
    ) -> tuple[int, int]:
        """Create the model if missing and row-lock it until commit; (id, next number),
        the number taken first when ``take_number``.

        Concurrent writers of one model queue on this UPDATE, and a rolled-back
        transaction gives its number back: versions stay unique and gap-free.
        """
        insert_ignore(
            conn,
            registered_models,
            {"name": name, "created_at": now, "updated_at": now},
            ["name"],
        )
        values: dict[str, Any] = {"updated_at": now}
        if take_number:
            values["next_version"] = _M.next_version + 1
        model_id, next_version = conn.execute(
            sa.update(registered_models)
            .where(_M.name == name)
            .values(**values)
            .returning(_M.model_id, _M.next_version)
        ).one()
        return int(model_id), int(next_version)

    def _model_id(self, conn: Connection, name: str) -> int:
        model_id = conn.execute(sa.select(_M.model_id).where(_M.name == name)).scalar()
        if model_id is None:
            raise self._model_not_found(conn, name)
        return int(model_id)

    def _touch_model(self, conn: Connection, name: str, now: int | None = None) -> int:
        # Bumps updated_at and, as an UPDATE, row-locks the model for the transaction.
        model_id = conn.execute(
            sa.update(registered_models)
            .where(_M.name == name)
            .values(updated_at=now or now_millis())
            .returning(_M.model_id)
        ).scalar()
        if model_id is None:
            raise self._model_not_found(conn, name)
        return int(model_id)

    def _version_key(self, conn: Connection, name: str, version: int) -> int:
        model_id = self._model_id(conn, name)
        found = conn.execute(
            sa.select(_V.version).where(_V.model_id == model_id, _V.version == version)
        ).first()
        if found is None:
            raise self._version_not_found(conn, name, version, None)
        return model_id

    def _record(
        self,
        conn: Connection,
        *,
        model_id: int,
        alias: str,
        old: int | None,
        new: int | None,
        now: int,
        user: str | None,
    ) -> None:
        conn.execute(
            sa.insert(alias_history).values(
                model_id=model_id,
                alias=alias,
                from_version=old,
                to_version=new,
                changed_at=now,
                changed_by=user,
            )
        )

    def _model_not_found(self, conn: Connection, name: str) -> RegisteredModelNotFound:
        names = conn.execute(sa.select(_M.name)).scalars()
        return RegisteredModelNotFound(name, suggestions=close_matches(name, names))

    def _version_not_found(
        self, conn: Connection, name: str, version: int | None, alias: str | None
    ) -> Exception:
        model_id = conn.execute(sa.select(_M.model_id).where(_M.name == name)).scalar()
        if model_id is None:
            return self._model_not_found(conn, name)
        if alias is not None:
            a = model_aliases.c
            aliases = {
                r.alias: int(r.version)
                for r in conn.execute(sa.select(a.alias, a.version).where(a.model_id == model_id))
            }
            return AliasNotFound(
                name, alias, aliases=aliases, suggestions=close_matches(alias, aliases)
            )
        versions = [
            int(v)
            for v in conn.execute(
                sa.select(_V.version).where(_V.model_id == model_id).order_by(_V.version)
            ).scalars()
        ]
        return ModelVersionNotFound(name, version, versions=versions)

    def _model_condition(self, cond: Condition) -> Any:
        if cond.entity == "tag":
            return keyed_exists(model_tags, lambda t: t.c.model_id == _M.model_id, cond)
        return compare(_MODEL_COLUMNS[cond.key], cond)

    def _version_condition(self, cond: Condition) -> Any:
        if cond.entity == "tag":
            return keyed_exists(
                version_tags,
                lambda t: sa.and_(t.c.model_id == _V.model_id, t.c.version == _V.version),
                cond,
            )
        return compare(_VERSION_COLUMNS[cond.key], cond)

    def _models(self, conn: Connection, rows: Sequence[Any]) -> list[RegisteredModel]:
        ids = [r.model_id for r in rows]
        if not ids:
            return []
        tags = key_values(conn, model_tags, "model_id", ids)
        aliases: dict[int, dict[str, int]] = defaultdict(dict)
        a = model_aliases.c
        for r in conn.execute(sa.select(a.model_id, a.alias, a.version).where(a.model_id.in_(ids))):
            aliases[r.model_id][r.alias] = int(r.version)
        latest = dict(
            conn.execute(
                sa.select(_V.model_id, sa.func.max(_V.version))
                .where(_V.model_id.in_(ids))
                .group_by(_V.model_id)
            ).all()
        )
        protected: dict[int, list[str]] = defaultdict(list)
        p = protected_aliases.c
        for pr in conn.execute(
            sa.select(p.model_id, p.alias).where(p.model_id.in_(ids)).order_by(p.alias)
        ):
            protected[pr.model_id].append(pr.alias)
        out = []
        for r in rows:
            created, updated = from_millis(r.created_at), from_millis(r.updated_at)
            assert created is not None
            assert updated is not None
            out.append(
                RegisteredModel(
                    name=r.name,
                    description=r.description,
                    created_at=created,
                    updated_at=updated,
                    tags=tags.get(r.model_id, {}),
                    aliases=dict(sorted(aliases.get(r.model_id, {}).items())),
                    latest_version=latest.get(r.model_id),
                    protected_aliases=tuple(protected.get(r.model_id, ())),
                )
            )
        return out

    def _versions(self, conn: Connection, rows: Sequence[Any]) -> list[ModelVersion]:
        if not rows:
            return []
        keys = {(r.model_id, r.version) for r in rows}
        model_ids = {m for m, _ in keys}
        tags: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
        t = version_tags.c
        for r in conn.execute(sa.select(version_tags).where(t.model_id.in_(model_ids))):
            if (r.model_id, r.version) in keys:
                tags[(r.model_id, r.version)][r.key] = r.value
        aliases: dict[tuple[int, int], list[str]] = defaultdict(list)
        a = model_aliases.c
        for r in conn.execute(
            sa.select(a.model_id, a.version, a.alias)
            .where(a.model_id.in_(model_ids))
            .order_by(a.alias)
        ):
            aliases[(r.model_id, r.version)].append(r.alias)
        return [
            _version(r, tags[(r.model_id, r.version)], aliases[(r.model_id, r.version)])
            for r in rows
        ]


def _version(row: Any, tags: Mapping[str, str], aliases: Iterable[str]) -> ModelVersion:
    created, updated = from_millis(row.created_at), from_millis(row.updated_at)
    assert created is not None
    assert updated is not None
    return ModelVersion(
        name=row.name,
        version=int(row.version),
        digest=row.digest,
        source=row.source,
        run_id=row.run_id,
        status=row.status,
        description=row.description,
        created_at=created,
        updated_at=updated,
        created_by=row.created_by,
        tags=dict(tags),
        aliases=tuple(aliases),
    )


def _order(column: Any, key: OrderKey) -> Any:
    return column.desc() if key.descending else column.asc()
