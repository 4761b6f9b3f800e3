"""Configs are validated with clear messages; checkpoints round-trip exactly and fail loudly."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_tools import header, rewrite_metadata, to_legacy
from safetensors.numpy import load_file as numpy_load_file
from safetensors.numpy import save_file
from tiny_rbms import random_rbm

from recsys_rbm.errors import CheckpointError, ConfigError
from recsys_rbm.io import checkpoint, checkpoint_files
from recsys_rbm.io.checkpoint import load_rbm, save_rbm, sidecar_path, tensor_path
from recsys_rbm.rbm.units import BernoulliUnits, SoftmaxUnits, as_layer
from recsys_rbm.train.config import TrainConfig, config_from_dict, config_to_dict, load_toml

# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochs": 0}, r"epochs must lie in 1\.\.100,000, got 0"),
        ({"epochs": 10**9}, "epochs must lie in 1..100,000, got 1000000000"),
        ({"batch_size": -5}, "batch_size must lie in 1.."),
        ({"learning_rate": 0.0}, "learning_rate must be positive"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"lr_schedule": "cosine"}, "lr_schedule must be 'constant' or 'linear', got 'cosine'"),
        ({"cd_k": 0}, r"cd_k must lie in 1\.\.1,000, got 0"),
        ({"cd_k": 10**20}, "cd_k must lie in 1..1,000"),
        ({"cd_schedule": ((0, 1), (5, 5000))}, r"cd_schedule steps k must lie in 1\.\.1,000"),
        ({"cd_schedule": ((0, 1), (10**9, 3))}, "cd_schedule epochs must be at most 100,000"),
        ({"cd_schedule": ((1, 1),)}, "cd_schedule must start at epoch 0"),
        ({"seed": -1}, r"seed must lie in 0\.\.2\*\*63-1"),
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
    with pytest.raises(ConfigError, match=r"does not read: \[train\]; rename or remove it: it reads the \[absent\]"):
        load_toml(path, TrainConfig, table="absent")  # a file's other tables are never ignored silently
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
    assert path == tmp_path / "model.safetensors" and os.listdir(tmp_path) == ["model.safetensors"]  # one file
    loaded, metadata, tensors = load_rbm(tmp_path / "model", expected_kind="mnist")
    assert loaded.units == as_layer(units)
    for name, tensor in rbm.parameters().items():
        assert loaded.parameters()[name].dtype == dtype
        assert torch.equal(loaded.parameters()[name], tensor), name
    assert torch.equal(tensors["velocity.weights"], extra["velocity.weights"])
    assert {key: metadata[key] for key in METADATA} == METADATA
    assert metadata["format_version"] == 2 and metadata["package_version"] and len(metadata["content_sha256"]) == 64


def test_the_metadata_lives_in_the_safetensors_header(tmp_path):
    path = _saved(tmp_path)
    stored = header(path)["__metadata__"]
    assert set(stored) == {"format", "format_version", "metadata", "content_sha256"}
    assert json.loads(stored["metadata"])["train_config"] == METADATA["train_config"]
    assert checkpoint_files.read_metadata(path, expected_kind="mnist")["epoch"] == 7


def _saved(tmp_path: Path, name: str = "model", seed: int = 0) -> Path:
    return save_rbm(tmp_path / name, random_rbm(BernoulliUnits(7), seed=seed), METADATA)


def test_a_missing_model_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist; train one first"):
        load_rbm(tmp_path / "nothing")
    (tmp_path / "folder.safetensors").mkdir()
    with pytest.raises(CheckpointError, match="is a folder, not a model file"):
        load_rbm(tmp_path / "folder.safetensors")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a safetensors model file"),
        (b"not a safetensors file at all", "not a safetensors model file"),
        (b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}", "corrupt safetensors header"),
    ],
)
def test_a_file_that_is_not_safetensors_is_a_checkpoint_error(tmp_path, content, message):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_rbm(path)


def test_a_safetensors_file_of_another_program_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(3, dtype=np.float32)}, str(path))
    with pytest.raises(CheckpointError, match="carries no recsys_rbm metadata"):
        load_rbm(path)


def test_truncated_or_altered_tensor_bytes_are_a_checkpoint_error(tmp_path):
    path = _saved(tmp_path)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) - 10])
    with pytest.raises(CheckpointError, match=r"is truncated: its header describes 376 bytes of tensors but only 366"):
        load_rbm(path)
    path.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))
    with pytest.raises(CheckpointError, match="does not match the checksum in its header"):
        load_rbm(path)


def test_edited_metadata_is_caught_by_the_one_hash(tmp_path):
    path = _saved(tmp_path)
    rewrite_metadata(path, lambda metadata: metadata.update(epoch=8), rehash=False)
    with pytest.raises(CheckpointError, match="does not match the checksum in its header"):
        load_rbm(path)
    with pytest.raises(CheckpointError, match="does not match the checksum"):
        checkpoint_files.read_verified(path, None, numpy_load_file)  # the torch-free reader checks the same


def test_a_checkpoint_format_from_the_future_is_refused_with_a_clear_line(tmp_path):
    path = _saved(tmp_path)
    arrays = numpy_load_file(str(path))
    save_file(arrays, str(path), metadata={**header(path)["__metadata__"], "format_version": "3"})
    with pytest.raises(
        CheckpointError, match="has checkpoint format 3, but this version of recsys_rbm reads formats 1"
    ):
        load_rbm(path)


def test_the_wrong_kind_of_model_is_a_checkpoint_error(tmp_path):
    path = _saved(tmp_path)
    with pytest.raises(CheckpointError, match="holds a 'mnist' model, but a 'movielens' model is needed"):
        load_rbm(path, expected_kind="movielens")


def test_metadata_that_does_not_describe_an_rbm_is_a_checkpoint_error(tmp_path):
    path = _saved(tmp_path)
    units = {"kind": "bernoulli", "n_units": 8}  # the weights have 7 rows
    rewrite_metadata(path, lambda metadata: metadata.update(visible_units=units), rehash=True)
    with pytest.raises(CheckpointError, match="does not describe an RBM"):
        load_rbm(path)


def test_saving_leaves_no_temporary_files_and_overwrites_in_place(tmp_path):
    _saved(tmp_path, seed=0)
    path = _saved(tmp_path, seed=1)
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]
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
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]
    assert torch.equal(load_rbm(path)[0].weights, old_weights)


def test_checkpoint_paths_accept_the_name_with_or_without_suffix(tmp_path):
    assert tensor_path(tmp_path / "m") == tensor_path(tmp_path / "m.safetensors") == tmp_path / "m.safetensors"
    assert sidecar_path(tmp_path / "m.v2") == tmp_path / "m.v2.json"


# --- format 1: two files, still read ---------------------------------------------------------------


def _legacy(tmp_path: Path, name: str = "old", seed: int = 0) -> Path:
    return to_legacy(_saved(tmp_path, f"{name}-source", seed), tmp_path / f"{name}.safetensors")


def test_an_old_two_file_checkpoint_still_loads(tmp_path):
    path = _legacy(tmp_path)
    rbm, metadata, _ = load_rbm(path, expected_kind="mnist")
    assert torch.equal(rbm.weights, random_rbm(BernoulliUnits(7), seed=0).weights)
    assert metadata["format_version"] == 1 and metadata["epoch"] == 7


def test_an_old_checkpoint_without_its_sidecar_is_a_checkpoint_error(tmp_path):
    path = _legacy(tmp_path)
    sidecar_path(path).unlink()
    with pytest.raises(CheckpointError, match="copy both files together, or retrain"):
        load_rbm(path)


def test_a_corrupt_old_sidecar_is_a_checkpoint_error(tmp_path):
    path = _legacy(tmp_path)
    sidecar_path(path).write_text('{"format": "recsys_rbm.checkp')
    with pytest.raises(CheckpointError, match="corrupt"):
        load_rbm(path)
    sidecar_path(path).write_text("[1, 2, 3]")
    with pytest.raises(CheckpointError, match="not a recsys_rbm model metadata file"):
        load_rbm(path)


def test_an_old_sidecar_of_another_model_is_a_checkpoint_error(tmp_path):
    first, second = _legacy(tmp_path, "first", seed=0), _legacy(tmp_path, "second", seed=1)
    sidecar_path(first).write_bytes(sidecar_path(second).read_bytes())
    with pytest.raises(CheckpointError, match="does not match its metadata"):
        load_rbm(first)
