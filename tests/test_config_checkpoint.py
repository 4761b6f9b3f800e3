"""Configs are validated with clear messages; checkpoints round-trip exactly and fail loudly."""

import json
import os
from pathlib import Path

import pytest
import torch
from tiny_rbms import random_rbm

from recsys_rbm import checkpoint, checkpoint_files
from recsys_rbm.checkpoint import load_rbm, save_rbm, sidecar_path, tensor_path
from recsys_rbm.config import TrainConfig, config_from_dict, config_to_dict, load_toml
from recsys_rbm.errors import CheckpointError, ConfigError
from recsys_rbm.units import BernoulliUnits, SoftmaxUnits, as_layer

# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochs": 0}, "epochs must be at least 1, got 0"),
        ({"batch_size": -5}, "batch_size must be at least 1"),
        ({"learning_rate": 0.0}, "learning_rate must be positive"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"lr_schedule": "cosine"}, "lr_schedule must be 'constant' or 'linear', got 'cosine'"),
        ({"cd_k": 0}, r"cd_k must lie in 1\.\.1000, got 0"),
        ({"cd_schedule": ((0, 1), (5, 5000))}, r"cd_schedule steps k must lie in 1\.\.1000"),
        ({"cd_schedule": ((1, 1),)}, "cd_schedule must start at epoch 0"),
        ({"seed": 2**63}, "seed must lie in"),
        ({"averaging": 1.0}, r"averaging must lie in \[0, 1\)"),
        ({"n_chains": -1}, "n_chains"),
        ({"final_momentum": 1.0}, r"final_momentum must lie in \[0, 1\)"),
        ({"weight_decay": -1e-4}, "weight_decay must be 0 or more"),
        ({"sparsity_target": 1.5}, "sparsity_target"),
        ({"monitor_size": 0}, "monitor_size"),
    ],
)
def test_invalid_train_config_values_are_config_errors_naming_the_field(values, message):
    with pytest.raises(ConfigError, match=message) as caught:
        TrainConfig(**values)
    assert "\n" not in str(caught.value)


def test_config_from_dict_rejects_unknown_keys_and_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown TrainConfig field") as caught:
        config_from_dict(TrainConfig, {"epoch": 3})
    assert "epoch" in str(caught.value) and "epochs" in str(caught.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"persistent": "yes"}, "persistent must be true or false"),
        ({"learning_rate": "fast"}, "learning_rate must be a number"),
        ({"epochs": True}, "epochs must be a number"),
        ({"epochs": 2.5}, "epochs must be a whole number"),
    ],
)
def test_config_from_dict_rejects_values_of_the_wrong_type(values, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(TrainConfig, values)


def test_config_from_dict_converts_numbers_to_the_field_type():
    config = config_from_dict(TrainConfig, {"epochs": 3.0, "learning_rate": 1, "persistent": True})
    assert (config.epochs, config.learning_rate, config.persistent) == (3, 1.0, True)
    assert isinstance(config.epochs, int) and isinstance(config.learning_rate, float)
    assert config_from_dict(TrainConfig, config_to_dict(config)) == config


def test_load_toml_reads_a_table_and_reports_bad_files(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[train]\nepochs = 7\nlearning_rate = 0.01\npersistent = true\nlr_schedule = "linear"\n')
    config = load_toml(path, TrainConfig, table="train")
    assert config == TrainConfig(epochs=7, learning_rate=0.01, persistent=True, lr_schedule="linear")
    assert load_toml(path, TrainConfig, table="absent") == TrainConfig()
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "missing.toml", TrainConfig)
    (tmp_path / "bad.toml").write_text("epochs = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(tmp_path / "bad.toml", TrainConfig)
    (tmp_path / "typo.toml").write_text("epohcs = 3\n")
    with pytest.raises(ConfigError, match="epohcs"):
        load_toml(tmp_path / "typo.toml", TrainConfig)


# --- checkpoints ------------------------------------------------------------------------------

METADATA = {"kind": "mnist", "seed": 3, "epoch": 7, "train_config": config_to_dict(TrainConfig(epochs=7))}


@pytest.mark.parametrize(
    ("units", "dtype"),
    [(BernoulliUnits(7), torch.float32), (SoftmaxUnits(4, 3), torch.float64)],
    ids=["bernoulli-float32", "softmax-float64"],
)
def test_save_and_load_round_trip_bit_exactly(tmp_path, units, dtype):
    rbm = random_rbm(units).to(dtype=dtype)
    extra = {"velocity.weights": torch.randn(units.size, 5, dtype=dtype)}
    path = save_rbm(tmp_path / "model", rbm, METADATA, extra)
    assert path == tmp_path / "model.safetensors" and sidecar_path(path).exists()
    loaded, metadata, tensors = load_rbm(tmp_path / "model", expected_kind="mnist")
    assert loaded.units == as_layer(units)
    for name, tensor in rbm.parameters().items():
        assert loaded.parameters()[name].dtype == dtype
        assert torch.equal(loaded.parameters()[name], tensor), name
    assert torch.equal(tensors["velocity.weights"], extra["velocity.weights"])
    assert {key: metadata[key] for key in METADATA} == METADATA
    assert metadata["tensors_sha256"] and metadata["package_version"]


def _saved(tmp_path: Path, name: str = "model", seed: int = 0) -> Path:
    return save_rbm(tmp_path / name, random_rbm(BernoulliUnits(7), seed=seed), METADATA)


def test_a_missing_model_or_sidecar_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_rbm(tmp_path / "nothing")
    path = _saved(tmp_path)
    sidecar_path(path).unlink()
    with pytest.raises(CheckpointError, match="no metadata file"):
        load_rbm(path)


def test_corrupt_json_is_a_checkpoint_error(tmp_path):
    path = _saved(tmp_path)
    sidecar_path(path).write_text('{"format": "recsys_rbm.checkp')
    with pytest.raises(CheckpointError, match="corrupt"):
        load_rbm(path)
    sidecar_path(path).write_text("[1, 2, 3]")
    with pytest.raises(CheckpointError, match="not a recsys_rbm model metadata file"):
        load_rbm(path)


def test_truncated_or_altered_tensor_file_is_a_checkpoint_error(tmp_path):
    path = _saved(tmp_path)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(CheckpointError, match="does not match its metadata"):
        load_rbm(path)
    path.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))
    with pytest.raises(CheckpointError, match="does not match its metadata"):
        load_rbm(path)


def test_unreadable_safetensors_with_a_matching_sidecar_is_a_checkpoint_error(tmp_path):
    path = _saved(tmp_path)
    path.write_bytes(b"not a safetensors file at all")
    metadata = json.loads(sidecar_path(path).read_text())
    metadata["tensors_sha256"] = checkpoint_files.sha256_of(path)
    sidecar_path(path).write_text(json.dumps(metadata))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_rbm(path)


def test_a_sidecar_from_another_model_is_a_checkpoint_error(tmp_path):
    first, second = _saved(tmp_path, "first", seed=0), _saved(tmp_path, "second", seed=1)
    sidecar_path(first).write_bytes(sidecar_path(second).read_bytes())
    with pytest.raises(CheckpointError, match="does not match its metadata"):
        load_rbm(first)


def test_the_wrong_kind_of_model_is_a_checkpoint_error(tmp_path):
    path = _saved(tmp_path)
    with pytest.raises(CheckpointError, match="holds a 'mnist' model, but a 'movielens' model is needed"):
        load_rbm(path, expected_kind="movielens")


def test_metadata_that_does_not_describe_an_rbm_is_a_checkpoint_error(tmp_path):
    path = save_rbm(tmp_path / "model", random_rbm(BernoulliUnits(7)), METADATA)
    metadata = json.loads(sidecar_path(path).read_text())
    metadata["visible_units"] = {"kind": "bernoulli", "n_units": 8}  # the weights have 7 rows
    sidecar_path(path).write_text(json.dumps(metadata))
    with pytest.raises(CheckpointError, match="does not describe an RBM"):
        load_rbm(path)


def test_saving_leaves_no_temporary_files_and_overwrites_in_place(tmp_path):
    _saved(tmp_path, seed=0)
    path = _saved(tmp_path, seed=1)
    assert sorted(os.listdir(tmp_path)) == ["model.json", "model.safetensors"]
    assert torch.equal(load_rbm(path)[0].weights, random_rbm(BernoulliUnits(7), seed=1).weights)


def test_a_failure_while_writing_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = _saved(tmp_path, seed=0)
    old_weights = load_rbm(path)[0].weights

    def write_half_then_fail(tensors, filename, *args, **kwargs):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        _saved(tmp_path, seed=1)
    assert sorted(os.listdir(tmp_path)) == ["model.json", "model.safetensors"]
    assert torch.equal(load_rbm(path)[0].weights, old_weights)


def test_tensor_and_sidecar_paths_accept_the_name_with_or_without_suffix(tmp_path):
    assert tensor_path(tmp_path / "m") == tensor_path(tmp_path / "m.safetensors") == tmp_path / "m.safetensors"
    assert sidecar_path(tmp_path / "m.v2") == tmp_path / "m.v2.json"
