"""The policy a load runs under: which globals a pickle may import.

A pickle passes when the scan (:mod:`modelyard.trust.scan`) finds nothing it
cannot follow, and every global it imports is allowed by

- the built-in allow-list (:mod:`modelyard.trust.allowlist`),
- the machine's trust file (``<config home>/trust.yaml``, key ``globals``,
  edited with ``modelyard trust add|remove``),
- the caller (``load_model(uri, trust=["mypkg.MyModel"])``),

or the whole model is vouched for: signed by a key the loader trusts
(code-bearing models, whose globals say nothing about what they do), or
loaded with ``trust="all"``. The loader sets the policy for the duration of
a load (:func:`using`); flavors read it with :func:`current`.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from modelyard._paths import config_home
from modelyard.errors import ConfigError, UnsafePickle, UntrustedModel
from modelyard.trust.allowlist import AllowList, builtin, parse_entry, resolve
from modelyard.trust.scan import Global, PickleScan

logger = logging.getLogger("modelyard")

TrustInput = str | Sequence[str] | None

# Globals that mean "this pickle carries code": they rebuild functions and
# classes by value, or are MLflow's custom-model bases.
_CODE_MODULES = ("cloudpickle", "types", "__main__", "mlflow", "modelyard.flavors.python_model")


@dataclass(frozen=True)
class TrustPolicy:
    """What a load admits. Build one with :func:`policy_for`."""

    #: entries given by the caller for this load
    entries: tuple[str, ...] = ()
    #: every global allowed (``trust="all"``)
    allow_all: bool = False
    #: who vouches for the model's code: a trusted signer, or None
    vouched_by: str | None = None
    allowlist: AllowList = field(default_factory=lambda: machine_allowlist())  # noqa: PLW0108 (defined below)

    def admit(self, scan: PickleScan, file: Path | str) -> frozenset[tuple[str, str]]:
        """The names (as written in the stream) the restricted unpickler may resolve.

        Raises :class:`UntrustedModel` naming every global outside the policy,
        or :class:`UnsafePickle` for a structure only a vouched-for model may have.
        """
        written = frozenset(scan.written)
        if self.allow_all or self.vouched_by is not None:
            return written
        allowed = self.allowlist.with_entries(self.entries)
        outside = sorted({g for g in scan.globals if not allowed.allows(g)})
        if outside:
            raise UntrustedModel(file, [str(g) for g in outside], hint=_hint(outside))
        if scan.irregular:
            offset, what = scan.irregular[0]
            raise UnsafePickle(file, f"{what} (only a signed model may do this)", offset=offset)
        for targets, kinds, op in (
            (scan.mapping_targets, (dict,), "SETITEM"),
            # deque pickles its items as APPENDS (deque.append/extend, no other behaviour)
            (scan.sequence_targets, (list, collections.deque), "APPEND"),
        ):
            for g in sorted(targets):
                obj = resolve(g)
                if not (isinstance(obj, type) and issubclass(obj, kinds)):
                    raise UnsafePickle(
                        file, f"{op} on an instance of {g}, which is no {kinds[0].__name__}"
                    )
        return written

    def admit_reference(self, reference: str, file: Path | str) -> None:
        """Refuse an import reference (``"pkg.mod:Name"``) the policy does not allow.

        For callables a model's metadata names and the loader calls (a torch
        ``module_factory``): they are judged like a pickle's globals.
        """
        if self.allow_all or self.vouched_by is not None:
            return
        module, _, qual = reference.partition(":")
        g = Global(module, qual)
        if not module or not qual or not self.allowlist.with_entries(self.entries).allows(g):
            raise UntrustedModel(file, [str(g)], hint=_hint([g]))


def policy_for(trust: TrustInput = None, *, vouched_by: str | None = None) -> TrustPolicy:
    """The policy for ``trust`` as ``load_model`` takes it.

    ``None``: the allow-lists only; ``"all"``: every global (logged as a
    warning); a name or a list of names: those too.

    >>> policy_for(["mypkg.MyModel"]).entries
    ('mypkg.MyModel',)
    """
    if trust == "all":
        logger.warning("trust='all': the pickle allow-list is off for this load")
        return TrustPolicy(allow_all=True, vouched_by=vouched_by)
    if trust is None:
        return TrustPolicy(vouched_by=vouched_by)
    if not isinstance(trust, (str, list, tuple)):
        raise ConfigError(
            f"trust must be 'all', a global name or a list of names, not {type(trust).__name__}",
            keys=["trust"],
            declared=[],
        )
    entries = (trust,) if isinstance(trust, str) else tuple(trust)
    for entry in entries:
        parse_entry(entry)  # a malformed entry fails here, before anything is read
    return TrustPolicy(entries=entries, vouched_by=vouched_by)


_CURRENT: contextvars.ContextVar[TrustPolicy | None] = contextvars.ContextVar(
    "modelyard_trust_policy", default=None
)


def current() -> TrustPolicy:
    """The policy of the load in progress, or the default one."""
    return _CURRENT.get() or TrustPolicy()


@contextlib.contextmanager
def using(policy: TrustPolicy) -> Iterator[TrustPolicy]:
    """Run a load under ``policy``."""
    token = _CURRENT.set(policy)
    try:
        yield policy
    finally:
        _CURRENT.reset(token)


def with_vouch(policy: TrustPolicy, vouched_by: str | None) -> TrustPolicy:
    """``policy`` with the model's signer recorded (or unchanged without one)."""
    return policy if vouched_by is None else replace(policy, vouched_by=vouched_by)


@dataclass(frozen=True)
class LoadTrust:
    """How a loaded model was trusted: its signature and the policy it loaded under.

    On :attr:`modelyard.Model.trust`.
    """

    #: "verified", "unsigned", "untrusted" (signed by a key not trusted here) or "off"
    signature: str
    key_id: str | None = None
    signer: str | None = None
    reason: str = ""
    #: the allow-list was off for this load (``trust="all"``)
    allow_all: bool = False
    #: globals the caller trusted for this load
    entries: tuple[str, ...] = ()
    #: for ``@alias``: the alias record's state ("verified", "unsigned", "untrusted", "off")
    alias_record: str | None = None
    #: the verified record's sequence (this machine refuses older ones from now on)
    alias_sequence: int | None = None

    @classmethod
    def of(cls, policy: TrustPolicy, status: Any, *, alias: Any = None) -> LoadTrust:
        """From the load's policy, its :class:`~modelyard.trust.signing.SignatureStatus`
        and, for an alias, its :class:`~modelyard.trust.alias_records.AliasCheck`."""
        return cls(
            signature=status.state,
            key_id=status.key_id,
            signer=status.label,
            reason=status.reason,
            allow_all=policy.allow_all,
            entries=policy.entries,
            alias_record=alias.state if alias is not None else None,
            alias_sequence=alias.sequence if alias is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "signature": self.signature,
            "key_id": self.key_id,
            "signer": self.signer,
            "reason": self.reason,
            "allow_all": self.allow_all,
            "entries": list(self.entries),
            "alias_record": self.alias_record,
            "alias_sequence": self.alias_sequence,
        }


# -- the machine's trust file ---------------------------------------------------------


def trust_file() -> Path:
    """``<config home>/trust.yaml``: the machine's trusted globals (and keys)."""
    from modelyard.trust.keys import TRUST_FILE

    return config_home() / TRUST_FILE


def machine_entries() -> tuple[str, ...]:
    """The ``globals`` entries of the machine's trust file."""
    data = _read_trust_file()
    entries = data.get("globals") or []
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ConfigError(
            f"{trust_file()}: 'globals' must be a list of names", keys=["globals"], declared=[]
        )
    for entry in entries:
        try:
            parse_entry(entry)
        except ConfigError as exc:
            raise ConfigError(f"{trust_file()}: {exc}", keys=["globals"], declared=[]) from None
    return tuple(entries)


def machine_allowlist() -> AllowList:
    """The built-in list plus the machine's entries."""
    return builtin().with_entries(machine_entries())


def add_machine_entries(entries: Iterable[str]) -> tuple[str, ...]:
    """Add entries to the trust file (kept sorted, once each); returns the new list."""
    from modelyard.trust.keys import editing_trust_file

    new = list(entries)
    for entry in new:
        parse_entry(entry)
    with editing_trust_file() as doc:
        doc["globals"] = sorted(set(machine_entries()) | set(new))
        return tuple(doc["globals"])


def remove_machine_entries(entries: Iterable[str]) -> tuple[str, ...]:
    """Remove entries from the trust file; an entry that is not there is an error."""
    from modelyard.trust.keys import editing_trust_file

    gone = list(entries)
    have = list(machine_entries())
    missing = [e for e in gone if e not in have]
    if missing:
        raise ConfigError(
            f"not in {trust_file()}: {', '.join(missing)}", keys=["globals"], declared=have
        )
    with editing_trust_file() as doc:
        doc["globals"] = [e for e in have if e not in gone]
        return tuple(doc["globals"])


def _read_trust_file() -> dict[str, Any]:
    import yaml

    file = trust_file()
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}", keys=["trust"], declared=[]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file} must hold a mapping", keys=["trust"], declared=[])
    return data


# -- messages -------------------------------------------------------------------------


def carries_code(globals_: Iterable[Global]) -> bool:
    """Whether a pickle rebuilds code by value (so no type list can judge it)."""
    return any(
        g.module == m or g.module.startswith(m + ".") for g in globals_ for m in _CODE_MODULES
    )


def _hint(outside: Sequence[Global]) -> str:
    names = [str(g) for g in outside]
    if any(g.module == "mlflow" or g.module.startswith("mlflow.") for g in outside) or any(
        g.module == "modelyard.flavors.python_model" for g in outside
    ):
        return (
            "It is a custom Python model: code, which no allow-list can judge. MLflow does not "
            "sign models, so one made elsewhere loads only if you trust its source: "
            "load_model(uri, trust='all'), or sign it with your key (modelyard sign PATH) "
            "after reviewing it"
        )
    if carries_code(outside):
        return (
            "It carries code (classes or functions pickled by value), which no allow-list can "
            "judge: it loads when signed by a key you trust (modelyard sign PATH --key NAME; "
            "models you save yourself are signed with your default key), or with "
            "load_model(uri, trust='all') if you trust its source"
        )
    listed = ", ".join(repr(n) for n in names[:5])
    more = ", ..." if len(names) > 5 else ""
    return (
        f"If you trust them: load_model(uri, trust=[{listed}{more}]), or for this machine: "
        f"modelyard trust add {' '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
    )
