"""What each route needs: one :class:`Access` per route, checked before its handler runs.

Every route of the app declares exactly one of these (the app refuses to
build otherwise), so a route nobody thought about cannot be reachable:

=====================================  =======================================================
``PUBLIC``                             anyone (only ``/health`` and ``/version``)
``SIGNED_IN``                          any valid token
``role("writer")``                     at least that role
``on_model("read")``                   that permission on the model named by the ``name``
                                       path parameter; ``create=True`` lets a writer act on a
                                       model that does not exist yet (it is created, and the
                                       creator gets ``manage`` on it)
``on_experiment("edit", "body...")``   that permission on an experiment (by id or name)
``on_run("edit")``                     that permission on the run's experiment
``BLOB_READ``                          a version or run the caller may read holds the blob
``on_resource("read", what, find)``    that permission on whatever ``find(call)`` names (the
                                       MLflow routes: an experiment by MLflow id, a logged
                                       model, an artifact path); ``find`` raises the 404
=====================================  =======================================================

A resource the caller may not see (a ``none`` grant) answers 404 as if it did
not exist; one they see but may not change answers 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from modelyard.store.access import Permission, Role

__all__ = [
    "BLOB_READ",
    "PUBLIC",
    "SIGNED_IN",
    "Access",
    "on_experiment",
    "on_model",
    "on_resource",
    "on_run",
    "role",
]

Kind = Literal["public", "signed_in", "role", "model", "experiment", "run", "blob", "resource"]
#: ``find(call) -> (permission, label)``: the caller's permission on the resource a
#: request names; raises the route's 404 when it is missing or hidden from the caller
Finder = Callable[[Any], tuple[Permission, str]]


@dataclass(frozen=True)
class Access:
    """What a route needs of its caller."""

    kind: Kind
    #: the role (``role``) or permission (resources) needed
    need: str = ""
    #: where the resource is named: a path parameter, or ``body.<field>`` / ``query.<field>``
    param: str = ""
    #: a model route that may create the model (writers)
    create: bool = False
    #: ``resource`` routes: what the resource is, and how to find the caller's permission
    what: str = ""
    find: Finder | None = None

    def describe(self) -> str:
        """How the route's access reads in the API document."""
        if self.kind == "public":
            return "public"
        if self.kind == "signed_in":
            return "any valid token"
        if self.kind == "role":
            return f"role {self.need} or above"
        if self.kind == "blob":
            return "read on a version or run holding the blob"
        if self.kind == "resource":
            return f"{self.need} on the {self.what}"
        extra = " (a writer may create it)" if self.create else ""
        return f"{self.need} on the {self.kind} named by {self.param}{extra}"


PUBLIC = Access("public")
SIGNED_IN = Access("signed_in")
BLOB_READ = Access("blob", "read", "sha256")


def role(need: Role) -> Access:
    """At least role ``need``."""
    return Access("role", need)


def on_model(need: Permission, param: str = "name", *, create: bool = False) -> Access:
    """Permission ``need`` on the registered model named by ``param``."""
    return Access("model", need, param, create)


def on_experiment(need: Permission, param: str) -> Access:
    """Permission ``need`` on the experiment named by ``param`` (an id or a name)."""
    return Access("experiment", need, param)


def on_run(need: Permission, param: str = "run_id") -> Access:
    """Permission ``need`` on the experiment of the run named by ``param``."""
    return Access("run", need, param)


def on_resource(need: Permission, what: str, find: Finder) -> Access:
    """Permission ``need`` on the resource ``find(call)`` names (see :data:`Finder`)."""
    return Access("resource", need, what=what, find=find)
