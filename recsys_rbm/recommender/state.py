"""What a trained recommender is, as arrays: the one place that names its tensors and reads them back.

:class:`ModelState` holds everything inference needs (parameters, the visible layout, every
user's profile as a user × item CSR, item rating counts, the id maps, the rating scale) as arrays
of one kind, NumPy or torch.

A user's **profile** is every rating the model was given for them, whatever part it played: the
ratings that trained it, those held out for early stopping and those held out to measure it.
Each entry carries its part (:data:`PARTS`). Once the model is trained, a user's hidden state is
computed from the whole profile and no list recommends an item in it; the parts only say, in
``info`` and the summaries, which ratings trained the model.

:func:`to_tensors` writes the checkpoint's tensor dict and metadata fields; :func:`from_tensors`
reads them back, for the torch model and the torch-free command-line path alike. Nothing here
imports torch.

Checkpoint tensors (``G`` units, ``K`` rating levels, ``H`` hidden units, ``Dv`` visible entries):

=======================  ==================  ================================================
name                     shape, dtype        what
=======================  ==================  ================================================
weights                  (Dv, H) float32     ``W``: rows ``[interactions (G) | ratings (G·K)]``
visible_bias             (Dv,) float32       ``b``
hidden_bias              (H,) float32        ``c``
conditional_weights      (G, H) float32      ``D``, the conditional RBM's term (when used)
rating_values            (K,) float64        the rating scale (``[1]`` for implicit data)
profile_indptr           (users + 1,) int64  every user's profile by user (CSR) …
profile_items            (nnz,) int32        … its items …
profile_levels           (nnz,) uint8        … their levels …
profile_parts            (nnz,) uint8        … and the part each played (:data:`PARTS`)
item_level_counts        (items, K) int64    profile ratings per item and level
user_raw_ids …           see ``IdMap``       the users' raw ids (integers or UTF-8 text)
item_raw_ids …           see ``IdMap``       the items' raw ids
case_hidden_input        (items, H) float32  item-based models: each item's hidden input ``c + Σ W``
=======================  ==================  ================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from recsys_rbm.data.ids import IdMap
from recsys_rbm.errors import DataError

KIND = "recommender-rbm"
LEGACY_KINDS = ("movielens-rbm",)  # written before the joint model; they load as ratings models

PARAMETER_NAMES = ("weights", "visible_bias", "hidden_bias", "conditional_weights")

#: What a profile entry was used for, by its code in ``profile_parts``.
PARTS = ("trained", "validation", "held_out")
TRAINED, VALIDATION, HELD_OUT = range(len(PARTS))


@dataclass(frozen=True)
class Layout:
    """Which blocks a recommender's visible layer has: interactions (G Bernoulli units), ratings (G K-way softmaxes)."""

    n_units: int  # G: items (user-based) or users (item-based)
    n_levels: int  # K of the rating block; 0 without one
    interactions: bool  # has the interaction block

    @property
    def ratings(self) -> bool:
        return self.n_levels >= 2

    @property
    def rating_offset(self) -> int:
        """The first row of the rating block in ``W`` and ``b``."""
        return self.n_units if self.interactions else 0

    @property
    def size(self) -> int:
        return (self.n_units if self.interactions else 0) + self.n_units * self.n_levels

    def interaction_rows(self) -> slice:
        return slice(0, self.n_units)

    def rating_rows(self) -> slice:
        return slice(self.rating_offset, self.rating_offset + self.n_units * self.n_levels)

    def to_json(self) -> dict[str, Any]:
        """The visible layer as the core's ``VisibleLayer.to_json`` writes it."""
        blocks = []
        if self.interactions:
            blocks.append({"kind": "bernoulli", "n_units": self.n_units})
        if self.ratings:
            blocks.append({"kind": "softmax", "n_groups": self.n_units, "n_levels": self.n_levels})
        return blocks[0] if len(blocks) == 1 else {"kind": "layer", "blocks": blocks}

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> Layout:
        blocks = spec["blocks"] if spec.get("kind") == "layer" else [spec]
        kinds = [block.get("kind") for block in blocks]
        if kinds not in (["bernoulli"], ["softmax"], ["bernoulli", "softmax"]):
            raise ValueError(f"a recommender's visible layer is interactions and/or ratings, got blocks {kinds}")
        rating = next((b for b in blocks if b["kind"] == "softmax"), None)
        n_units = int(blocks[0]["n_units"] if blocks[0]["kind"] == "bernoulli" else blocks[0]["n_groups"])
        if rating is not None and int(rating["n_groups"]) != n_units:
            raise ValueError("the interaction and rating blocks cover different numbers of units")
        return cls(n_units, int(rating["n_levels"]) if rating else 0, kinds[0] == "bernoulli")


@dataclass
class ModelState:
    """A trained recommender's arrays (all NumPy or all torch) and the facts needed to read them."""

    model: str  # "joint" or "ratings"
    mode: str  # "user" or "item": what a case is
    layout: Layout
    weights: Any  # (Dv, H)
    visible_bias: Any  # (Dv,)
    hidden_bias: Any  # (H,)
    conditional: Any | None  # (G, H)
    rating_values: np.ndarray  # (K,) float64, always NumPy
    profile_indptr: np.ndarray  # (n_users + 1,) int64, always NumPy: every known rating, by user
    profile_items: np.ndarray  # (nnz,) int64, ascending within each user
    profile_levels: np.ndarray  # (nnz,) int64
    profile_parts: np.ndarray  # (nnz,) int64 codes into PARTS: which part of the data each entry was
    item_level_counts: np.ndarray  # (n_items, K) int64, over the profiles
    user_ids: IdMap
    item_ids: IdMap
    case_input: Any | None = None  # (n_items, H) item-based: each item's hidden input c + Σ W (before the sigmoid)

    @property
    def case_hidden(self) -> Any | None:
        """Item-based: each item's mean-field hidden state ``p̂ = sigmoid(input)``; (n_items, H)."""
        if self.case_input is None:
            return None
        from recsys_rbm.recommender.meanfield import sigmoid

        xp = np if isinstance(self.case_input, np.ndarray) else _namespace(self.case_input)
        return sigmoid(self.case_input, xp)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_hidden(self) -> int:
        return int(self.hidden_bias.shape[0])

    def part_counts(self) -> dict[str, int]:
        """How many profile entries played each part: ``{"trained": …, "validation": …, "held_out": …}``."""
        counts = np.bincount(self.profile_parts, minlength=len(PARTS))
        return {name: int(count) for name, count in zip(PARTS, counts, strict=True)}

    def parameters(self) -> dict[str, Any]:
        out = {"weights": self.weights, "visible_bias": self.visible_bias, "hidden_bias": self.hidden_bias}
        if self.conditional is not None:
            out["conditional_weights"] = self.conditional
        return out


@dataclass(frozen=True)
class ProfileArrays:
    """Users' profiles as the scorer reads them: a user × item CSR (items ascending), each entry's part, and
    the ratings per item and level."""

    indptr: np.ndarray  # (n_users + 1,) int64
    items: np.ndarray  # (nnz,) int64
    levels: np.ndarray  # (nnz,) int64
    parts: np.ndarray  # (nnz,) int64 codes into PARTS
    users: np.ndarray  # (nnz,) int64, the owner of each entry (ascending)
    item_level_counts: np.ndarray  # (n_items, K) int64

    @classmethod
    def of(
        cls, users: np.ndarray, items: np.ndarray, levels: np.ndarray, parts: np.ndarray, shape: tuple[int, int, int]
    ) -> ProfileArrays:
        """From (user, item, level, part) entries in any order; ``shape`` is (users, items, levels).

        A (user, item) pair may appear once only: a profile holds one rating per item.
        """
        n_users, n_items, k = shape
        order = np.lexsort((items, users))
        users, items, levels, parts = (np.asarray(a, dtype=np.int64)[order] for a in (users, items, levels, parts))
        if users.size > 1 and bool(np.any((users[1:] == users[:-1]) & (items[1:] == items[:-1]))):
            raise DataError(
                "a user's profile would hold one item twice: these ratings are already part of the model; "
                "give each (user, item) rating once"
            )
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
        counts = np.bincount(items * k + levels, minlength=n_items * k).reshape(n_items, k)
        return cls(indptr, items, levels, parts, users, counts)

    def by_item(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The item × user CSR of the same entries: ``(indptr, users, levels)``."""
        n_items = self.item_level_counts.shape[0]
        order = np.lexsort((self.users, self.items))
        indptr = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.items, minlength=n_items), out=indptr[1:])
        return indptr, self.users[order], self.levels[order]


def to_tensors(state: ModelState, to_array: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checkpoint's tensor dict and the metadata fields that describe it (see the module docstring).

    ``to_array`` turns a NumPy array into the checkpoint's array type (``torch.from_numpy`` for
    the torch writer).
    """
    tensors: dict[str, Any] = dict(state.parameters())
    arrays = {
        "rating_values": np.asarray(state.rating_values, dtype=np.float64),
        "profile_indptr": state.profile_indptr.astype(np.int64),
        "profile_items": state.profile_items.astype(np.int32),
        "profile_levels": state.profile_levels.astype(np.uint8),
        "profile_parts": state.profile_parts.astype(np.uint8),
        "item_level_counts": state.item_level_counts.astype(np.int64),
        **state.user_ids.to_arrays("user"),
        **state.item_ids.to_arrays("item"),
    }
    tensors |= {name: to_array(array) for name, array in arrays.items()}
    if state.case_input is not None:
        tensors["case_hidden_input"] = state.case_input
    metadata = {
        "kind": KIND,
        "model": state.model,
        "mode": state.mode,
        "visible_units": state.layout.to_json(),
        "n_users": state.n_users,
        "n_items": state.n_items,
        "n_levels": int(state.rating_values.shape[0]),
        "n_hidden": state.n_hidden,
        "n_train_ratings": int(np.count_nonzero(state.profile_parts == TRAINED)),
        "profile_ratings": state.part_counts(),
        "rating_values": [float(v) for v in state.rating_values],
    }
    return tensors, metadata


def from_tensors(tensors: dict[str, Any], metadata: dict[str, Any], to_numpy: Any, xp: ModuleType) -> ModelState:
    """Rebuild the state written by :func:`to_tensors`; raises KeyError/ValueError/TypeError when inconsistent.

    ``to_numpy`` turns a checkpoint array into NumPy (for the CSR and the id maps); the
    parameters stay in the checkpoint's array type (``xp``). Checkpoints of kind
    ``movielens-rbm`` (before the joint model) read as ratings models; checkpoints written before
    profiles (``train_*`` tensors) read with every entry a trained one.
    """
    legacy = metadata.get("kind") in LEGACY_KINDS
    n_users, n_items = int(metadata["n_users"]), int(metadata["n_items"])
    mode = metadata["mode"]
    if mode not in ("user", "item"):
        raise ValueError(f"mode must be 'user' or 'item', got {mode!r}")
    n_units = n_items if mode == "user" else n_users
    if legacy:
        layout = Layout(n_units, int(metadata["n_levels"]), interactions=False)
    else:
        layout = Layout.from_json(metadata["visible_units"])
    rating_values = to_numpy(tensors["rating_values"]).astype(np.float64)
    prefix = "profile" if "profile_indptr" in tensors else "train"
    indptr = to_numpy(tensors[f"{prefix}_indptr"]).astype(np.int64)
    items = to_numpy(tensors[f"{prefix}_items"]).astype(np.int64)
    levels = to_numpy(tensors[f"{prefix}_levels"]).astype(np.int64)
    if prefix == "profile":
        parts = to_numpy(tensors["profile_parts"]).astype(np.int64)
    else:
        parts = np.full(items.shape, TRAINED, dtype=np.int64)
    user_ids, item_ids = (
        IdMap.from_arrays({k: to_numpy(v) for k, v in tensors.items() if k.startswith(f"{kind}_raw_")}, kind, kind)
        for kind in ("user", "item")
    )
    weights = tensors["weights"]
    conditional = tensors.get("conditional_weights")
    case_input = tensors.get("case_hidden_input")
    if case_input is None and tensors.get("item_hidden") is not None:  # before format 2: probabilities were stored
        case_input = _logit(tensors["item_hidden"], xp)
    counts = to_numpy(tensors["item_level_counts"]).astype(np.int64)
    n_levels = rating_values.shape[0]
    problems = [
        (layout.n_units != n_units, f"the visible layer has {layout.n_units} units, the mode needs {n_units}"),
        (len(user_ids) != n_users or len(item_ids) != n_items, "the id maps disagree with the recorded sizes"),
        (indptr.shape != (n_users + 1,) or indptr[-1] != items.shape[0], "the profiles are inconsistent"),
        (items.shape != levels.shape or items.shape != parts.shape, "the profiles are inconsistent"),
        (items.size and (items.min() < 0 or items.max() >= n_items), "a profile names an unknown item"),
        (levels.size and (levels.min() < 0 or levels.max() >= n_levels), "a profile rating is off the scale"),
        (parts.size and (parts.min() < 0 or parts.max() >= len(PARTS)), "a profile entry has an unknown part"),
        (layout.ratings and layout.n_levels != n_levels, "the rating block and the rating scale disagree"),
        (counts.shape != (n_items, n_levels), "the item rating counts have the wrong shape"),
        (tuple(weights.shape[:1]) != (layout.size,), "the weights do not match the visible layer"),
        (conditional is not None and tuple(conditional.shape[:1]) != (n_units,), "the conditional term is misshapen"),
        (mode == "item" and case_input is None, "an item-based model lacks its items' hidden states"),
    ]
    for bad, message in problems:
        if bad:
            raise ValueError(message)
    model = "ratings" if legacy else metadata.get("model", "joint" if layout.interactions else "ratings")
    return ModelState(
        model=model,
        mode=mode,
        layout=layout,
        weights=weights,
        visible_bias=tensors["visible_bias"],
        hidden_bias=tensors["hidden_bias"],
        conditional=conditional,
        rating_values=rating_values,
        profile_indptr=indptr,
        profile_items=items,
        profile_levels=levels,
        profile_parts=parts,
        item_level_counts=counts,
        user_ids=user_ids,
        item_ids=item_ids,
        case_input=case_input,
    )


def _namespace(array: Any) -> ModuleType:
    """The module of a non-NumPy array (torch), found without importing torch here."""
    import sys

    return sys.modules[type(array).__module__.split(".")[0]]


def _logit(probability: Any, xp: ModuleType) -> Any:
    """``log(p / (1 − p))``, with ``p`` kept inside (1e-6, 1 − 1e-6)."""
    clipped = xp.clip(probability, 1e-6, 1 - 1e-6)
    return xp.log(clipped) - xp.log(1 - clipped)
