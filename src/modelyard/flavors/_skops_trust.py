"""Which types in a skops file modelyard trusts when the caller names none.

skops refuses to load any type outside its own short default list unless the
caller lists it. MLflow passes the list stored in the model's own ``MLmodel``,
which whoever wrote the file also wrote, so it protects nothing. modelyard
decides from the types themselves:

- *classes* (never functions: a function in a skops file is called at predict
  time with arguments the file chooses) defined in scikit-learn, numpy,
  ``scipy.sparse`` or ``collections``, and a few harmless builtins;
- except the classes that hold raw node indices scikit-learn follows without
  bounds checks (skops lists them in ``UNTRUSTED_TYPE_REASONS``): a crafted
  file can make ``predict`` read memory outside the model. Of those,
  ``sklearn.tree._tree.Tree`` (decision trees, random forests, extra trees,
  gradient boosting) is trusted *after* :func:`tree_problems` finds every node
  index inside its tree and every feature index inside what the calling
  estimator validated; the others stay untrusted.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

TREE = "sklearn.tree._tree.Tree"
_SAFE_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "collections.")
_SAFE_EXACT = frozenset({"builtins.slice", "builtins.frozenset", "builtins.complex"})
# Known to hold raw indices even if the installed skops does not list them.
_RAW_INDEX_TYPES = frozenset(
    {TREE, "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"}
)
_CHECKED = frozenset({TREE})


def raw_index_types() -> frozenset[str]:
    """Types whose content, not only their type, decides whether they are safe."""
    try:
        from skops.io.exceptions import UNTRUSTED_TYPE_REASONS
    except ImportError:  # older skops: only our own list
        return _RAW_INDEX_TYPES
    return _RAW_INDEX_TYPES | frozenset(UNTRUSTED_TYPE_REASONS)


def is_safe_type(qualified: str) -> bool:
    """Whether modelyard trusts a type named in a skops file by default.

    Trees are trusted here and checked after loading with :func:`tree_problems`.
    """
    if qualified in _SAFE_EXACT:
        return True
    if not qualified.startswith(_SAFE_PREFIXES):
        return False
    if qualified in raw_index_types() - _CHECKED:
        return False
    return _is_class(qualified)


def _is_class(qualified: str) -> bool:
    # skops imports these modules to load the file anyway; importing them here
    # first runs no code the load would not run.
    module, _, name = qualified.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(obj, type)


@dataclass(frozen=True)
class TreeReport:
    """What :func:`tree_problems` found."""

    #: the file's trees are malformed: predicting could read out of bounds
    corrupt: list[str] = field(default_factory=list)
    #: trees sit where modelyard does not know how they are called
    unvouched: list[str] = field(default_factory=list)


def tree_problems(root: Any) -> TreeReport:
    """Why the decision trees inside ``root`` are not safe to predict with.

    Every ``Tree`` must be the ``tree_`` of a decision-tree estimator; every
    internal node's children must come after it and inside the tree (so walks
    end and stay in bounds) and its feature index must be below the tree's
    ``n_features``, which must equal the estimator's validated
    ``n_features_in_``. Random forests, extra trees and gradient boosting call
    their trees without validating the input again, so they must validate the
    same width themselves. AdaBoost and bagging call the trees' own validating
    ``predict``. Trees inside any other ensemble (``IsolationForest`` calls
    them unvalidated on feature subsets) are not vouched for.
    """
    from sklearn.ensemble import (
        AdaBoostClassifier,
        AdaBoostRegressor,
        BaggingClassifier,
        BaggingRegressor,
    )
    from sklearn.ensemble._base import BaseEnsemble
    from sklearn.ensemble._forest import BaseForest
    from sklearn.ensemble._gb import BaseGradientBoosting
    from sklearn.tree import BaseDecisionTree
    from sklearn.tree._tree import Tree

    unvalidated_calls = (BaseForest, BaseGradientBoosting)
    validated_calls = (AdaBoostClassifier, AdaBoostRegressor, BaggingClassifier, BaggingRegressor)
    report = TreeReport()
    for obj, owner, attr in _walk(root):
        where = type(owner).__name__ if owner is not None else "the model"
        if isinstance(obj, Tree):
            if not isinstance(owner, BaseDecisionTree) or attr != "tree_":
                report.corrupt.append(f"a Tree found outside a decision tree's tree_ (in {where})")
            else:
                report.corrupt.extend(_node_problems(obj, owner))
        elif isinstance(obj, BaseDecisionTree) and hasattr(obj, "tree_"):
            if isinstance(owner, unvalidated_calls):
                width = _width(owner)
                if width is None or width != _width(obj):
                    report.corrupt.append(
                        f"a {type(obj).__name__} in {where} expects {_width(obj)} features, "
                        f"the ensemble validates {width}"
                    )
            elif isinstance(owner, BaseEnsemble) and type(owner) not in validated_calls:
                report.unvouched.append(f"decision trees inside {where}")
    return report


def _width(estimator: Any) -> int | None:
    value = estimator.__dict__.get("n_features_in_")
    try:
        import numpy as np

        return int(value) if isinstance(value, (int, np.integer)) else None
    except (TypeError, ValueError):
        return None


def _node_problems(tree: Any, owner: Any) -> list[str]:
    import numpy as np

    name = type(owner).__name__
    n = int(tree.node_count)
    left = np.asarray(tree.children_left)
    right = np.asarray(tree.children_right)
    feature = np.asarray(tree.feature)
    if n < 1 or not (len(left) == len(right) == len(feature) == n):
        return [f"a {name}'s tree has inconsistent node arrays"]
    if np.asarray(tree.value).shape[0] != n:
        return [f"a {name}'s tree has {np.asarray(tree.value).shape[0]} values for {n} nodes"]
    ids = np.arange(n)
    leaf = (left == -1) & (right == -1)
    internal = ~leaf
    bad_child = internal & ((left <= ids) | (left >= n) | (right <= ids) | (right >= n))
    if bad_child.any():
        i = int(np.flatnonzero(bad_child)[0])
        return [
            f"a {name}'s tree node {i} points to children {int(left[i])}, {int(right[i])} "
            f"outside nodes {i + 1}..{n - 1}"
        ]
    width = _width(owner)
    if width is None or int(tree.n_features) != width:
        return [f"a {name}'s tree uses {int(tree.n_features)} features, it validates {width}"]
    bad_feature = internal & ((feature < 0) | (feature >= width))
    if bad_feature.any():
        i = int(np.flatnonzero(bad_feature)[0])
        return [f"a {name}'s tree node {i} reads feature {int(feature[i])} of {width}"]
    return []


def _walk(root: Any) -> Iterator[tuple[Any, Any, str | None]]:
    """Every object reachable from ``root`` with the estimator holding it and the attribute.

    Containers (lists, tuples, dicts, object arrays) are looked through: an
    estimator in ``RandomForest.estimators_`` is owned by the forest. Objects
    are yielded once per place they appear, descended into once.
    """
    import numpy as np

    seen: set[int] = set()
    stack: list[tuple[Any, Any, str | None]] = [(root, None, None)]
    while stack:
        obj, owner, attr = stack.pop()
        yield obj, owner, attr
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (list, tuple, set, frozenset)):
            stack += [(v, owner, attr) for v in obj]
        elif isinstance(obj, dict):
            stack += [(v, owner, attr) for v in obj.values()]
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack += [(v, owner, attr) for v in obj.flat]
        elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("sklearn."):
            holder = obj if hasattr(obj, "get_params") else owner
            stack += [(v, holder, k) for k, v in vars(obj).items()]
