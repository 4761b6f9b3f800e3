"""What a trained recommender is, as arrays: the one place that names its tensors and reads them back.

:class:`ModelState` holds everything inference needs (parameters, the visible layout, the
training ratings as a user × item CSR, item rating counts, the id maps, the rating scale) as arrays
of one kind, NumPy or torch. :func:`to_tensors` writes the checkpoint's tensor dict and metadata
fields; :func:`from_tensors` reads them back, for the torch model and the torch-free command-line
path alike. Nothing here imports torch.

Checkpoint tensors (``G`` units, ``K`` rating levels, ``H`` hidden units, ``Dv`` visible entries):

=======================  ==================  ================================================
name                     shape, dtype        what
=======================  ==================  ================================================
weights                  (Dv, H) float32     ``W``: rows ``[interactions (G) | ratings (G·K)]``
visible_bias             (Dv,) float32       ``b``
hidden_bias              (H,) float32        ``c``
conditional_weights      (G, H) float32      ``D``, the conditional RBM's term (when used)
rating_values            (K,) float64        the rating scale (``[1]`` for implicit data)
train_indptr             (users + 1,) int64  the training ratings by user (CSR) …
train_items              (nnz,) int32        … their items …
train_levels             (nnz,) uint8        … and levels
item_level_counts        (items, K) int64    training ratings per item and level
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

KIND = "recommender-rbm"
LEGACY_KINDS = ("movielens-rbm",)  # written before the joint model; they load as ratings models

PARAMETER_NAMES = ("weights", "visible_bias", "hidden_bias", "conditional_weights")


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
    train_indptr: np.ndarray  # (n_users + 1,) int64, always NumPy
    train_items: np.ndarray  # (nnz,) int64
    train_levels: np.ndarray  # (nnz,) int64
    item_level_counts: np.ndarray  # (n_items, K) int64
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

    def parameters(self) -> dict[str, Any]:
        out = {"weights": self.weights, "visible_bias": self.visible_bias, "hidden_bias": self.hidden_bias}
        if self.conditional is not None:
            out["conditional_weights"] = self.conditional
        return out


def to_tensors(state: ModelState, to_array: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checkpoint's tensor dict and the metadata fields that describe it (see the module docstring).

    ``to_array`` turns a NumPy array into the checkpoint's array type (``torch.from_numpy`` for
    the torch writer).
    """
    tensors: dict[str, Any] = dict(state.parameters())
    arrays = {
        "rating_values": np.asarray(state.rating_values, dtype=np.float64),
        "train_indptr": state.train_indptr.astype(np.int64),
        "train_items": state.train_items.astype(np.int32),
        "train_levels": state.train_levels.astype(np.uint8),
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
        "n_train_ratings": int(state.train_items.shape[0]),
        "rating_values": [float(v) for v in state.rating_values],
    }
    return tensors, metadata


def from_tensors(tensors: dict[str, Any], metadata: dict[str, Any], to_numpy: Any, xp: ModuleType) -> ModelState:
    """Rebuild the state written by :func:`to_tensors`; raises KeyError/ValueError/TypeError when inconsistent.

    ``to_numpy`` turns a checkpoint array into NumPy (for the CSR and the id maps); the
    parameters stay in the checkpoint's array type (``xp``). Checkpoints of kind
    ``movielens-rbm`` (before the joint model) read as ratings models.
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
    indptr = to_numpy(tensors["train_indptr"]).astype(np.int64)
    items = to_numpy(tensors["train_items"]).astype(np.int64)
    levels = to_numpy(tensors["train_levels"]).astype(np.int64)
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
        (indptr.shape != (n_users + 1,) or indptr[-1] != items.shape[0], "the training ratings are inconsistent"),
        (items.shape != levels.shape, "the training ratings are inconsistent"),
        (items.size and (items.min() < 0 or items.max() >= n_items), "a training rating names an unknown item"),
        (levels.size and (levels.min() < 0 or levels.max() >= n_levels), "a training rating is off the scale"),
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
        train_indptr=indptr,
        train_items=items,
        train_levels=levels,
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
