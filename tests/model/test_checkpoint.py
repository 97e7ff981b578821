"""Every checkpoint layout loads to the reference's numbers; every broken or hostile file gets a clear error."""

import builtins
import json
import logging
import shutil

import pytest
import torch

from tests.checkpoints import write_hub_checkpoint, write_release_checkpoint
from tests.reference import reference_logits
from xlm_demo.model.checkpoint import CheckpointError, load_checkpoint
from xlm_demo.model.weights import build_model

IDS = [1, 20, 31, 42, 53, 17, 9]


def logits_of(checkpoint, ids, lang_id):
    model = build_model(checkpoint.config, checkpoint.state_dict)
    with torch.no_grad():
        return model.logits(model(torch.tensor([ids]), torch.tensor([[lang_id]])))[0]


@pytest.mark.parametrize("weights", ["safetensors", "bin"])
def test_hub_layout_matches_reference(tmp_path, weights):
    reference = write_hub_checkpoint(tmp_path, weights=weights)
    checkpoint = load_checkpoint(str(tmp_path))
    assert checkpoint.lang2id == {"de": 0, "en": 1}
    for lang_id in (0, 1):
        torch.testing.assert_close(
            logits_of(checkpoint, IDS, lang_id), reference_logits(reference, IDS, lang_id), atol=1e-5, rtol=1e-5
        )


def test_config_causal_false_is_overridden_and_logged(tmp_path, caplog):
    write_hub_checkpoint(tmp_path)
    with caplog.at_level(logging.INFO, logger="xlm_demo"):
        load_checkpoint(str(tmp_path))
    assert "causal: false" in caplog.text


def test_original_release_is_converted(tmp_path):
    reference, hf_vocab = write_release_checkpoint(tmp_path)
    for ref in (tmp_path / "clm_test.pth", tmp_path):
        checkpoint = load_checkpoint(str(ref))
        assert checkpoint.vocab == hf_vocab
        assert checkpoint.merges_path == tmp_path / "codes_test"
        torch.testing.assert_close(
            logits_of(checkpoint, IDS, 1), reference_logits(reference, IDS, 1), atol=1e-5, rtol=1e-5
        )


def test_hub_id_is_read_from_the_local_cache_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    snapshot = tmp_path / "models--test-org--tiny-xlm" / "snapshots" / "abc123"
    reference = write_hub_checkpoint(snapshot)
    (tmp_path / "models--test-org--tiny-xlm" / "refs").mkdir()
    (tmp_path / "models--test-org--tiny-xlm" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    checkpoint = load_checkpoint("test-org/tiny-xlm")
    torch.testing.assert_close(logits_of(checkpoint, IDS, 0), reference_logits(reference, IDS, 0), atol=1e-5, rtol=1e-5)


def test_uncached_hub_id_offline_is_a_clear_error():
    with pytest.raises(CheckpointError, match="not in the local Hugging Face cache and HF_HUB_OFFLINE is set"):
        load_checkpoint("test-org/not-cached-anywhere")


class RunsCode:
    """A pickle payload that would write a marker file when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    write_hub_checkpoint(tmp_path, weights="bin")
    marker = tmp_path / "payload-ran"
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    state["evil"] = RunsCode(marker)
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pytorch_model.bin holds more than tensors and was refused"):
        load_checkpoint(str(tmp_path))
    assert not marker.exists()


def test_truncated_safetensors_names_the_file(tmp_path):
    write_hub_checkpoint(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="model.safetensors is not a readable safetensors file"):
        load_checkpoint(str(tmp_path))


def test_truncated_bin_names_the_file(tmp_path):
    write_hub_checkpoint(tmp_path, weights="bin")
    weights = tmp_path / "pytorch_model.bin"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="pytorch_model.bin is not a readable PyTorch file"):
        load_checkpoint(str(tmp_path))


def test_corrupt_config_names_the_file(tmp_path):
    write_hub_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json is not valid JSON"):
        load_checkpoint(str(tmp_path))


def test_config_without_shape_is_refused(tmp_path):
    write_hub_checkpoint(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["emb_dim"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="config.json has no emb_dim, which the model's shape needs$"):
        load_checkpoint(str(tmp_path))


@pytest.mark.parametrize(
    "field, value, said",
    [
        ("n_layers", "four", "n_layers must be a whole number, not 'four'"),
        ("n_heads", 2.5, "n_heads must be a whole number, not 2.5"),
        ("emb_dim", None, "emb_dim must be a whole number, not None"),
        ("layer_norm_eps", "tiny", "layer_norm_eps must be a number, not 'tiny'"),
    ],
)
def test_a_config_value_that_is_no_number_is_named_by_its_field(tmp_path, field, value, said):
    write_hub_checkpoint(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, field: value}))
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(str(tmp_path))
    assert str(refused.value) == f"{tmp_path / 'config.json'}: {said}"


def test_unsupported_variant_is_refused(tmp_path):
    write_hub_checkpoint(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["sinusoidal_embeddings"] = True
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="sinusoidal_embeddings"):
        load_checkpoint(str(tmp_path))


@pytest.mark.parametrize("missing", ["vocab.json", "merges.txt", "model.safetensors"])
def test_missing_file_is_named(tmp_path, missing):
    write_hub_checkpoint(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(CheckpointError, match=missing.split(".")[0]):
        load_checkpoint(str(tmp_path))


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="neither config.json nor"):
        load_checkpoint(str(tmp_path))
    with pytest.raises(CheckpointError, match="is not a checkpoint"):
        load_checkpoint(str(tmp_path / "nowhere" / "model"))


def test_release_without_codes_is_refused(tmp_path):
    write_release_checkpoint(tmp_path)
    shutil.move(tmp_path / "codes_test", tmp_path / "elsewhere")
    with pytest.raises(CheckpointError, match="no BPE codes"):
        load_checkpoint(str(tmp_path / "clm_test.pth"))
