"""Where weights and vocabulary come from: a hub id, a local hub-layout folder, or an original XLM release."""

from __future__ import annotations

import json
import logging
import pickle
import shlex
import socket
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from .xlm import XLMConfig

log = logging.getLogger("xlm_demo")

DEFAULT_MODEL = "FacebookAI/xlm-clm-ende-1024"
BUNDLED_MODEL = Path(__file__).resolve().parents[2] / "assets" / "xlm-mini-ende"
BUNDLED_NAME = "bundled"  # --model bundled, from any folder
HUB_FILES = ("config.json", "vocab.json", "merges.txt", "tokenizer_config.json")  # and the weights:
WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # the first the repository has
N_SPECIAL_TOKENS = 14  # <s> </s> <pad> <unk> <special0..9>, ids 0-13 in every XLM dictionary


class CheckpointError(ValueError):
    """A checkpoint that cannot be found, read or understood."""


@dataclass(frozen=True)
class Checkpoint:
    """Everything needed to build the model and its tokenizer, tensors named as in transformers."""

    source: str
    config: XLMConfig
    lang2id: dict[str, int]
    state_dict: dict[str, torch.Tensor]
    vocab: dict[str, int]  # transformers' vocab.json: "xx" continues a word, "yy</w>" ends one
    merges_path: Path
    config_lowercases: bool  # what tokenizer_config.json claims; the tokenizer checks it against the vocab


def load_checkpoint(ref: str = DEFAULT_MODEL) -> Checkpoint:
    """Read a checkpoint from a local folder or .pth file, else from the Hugging Face hub (or its cache)."""
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix == ".pth":
        return load_release(path)
    if path.is_dir():
        if (path / "config.json").is_file():
            return load_hub_layout(path, source=str(path))
        releases = sorted(path.glob("*.pth"))
        if len(releases) == 1:
            return load_release(releases[0])
        raise CheckpointError(f"{path} holds neither config.json nor a single .pth checkpoint")
    if ref == BUNDLED_NAME:
        return load_hub_layout(BUNDLED_MODEL, source=f"bundled: {BUNDLED_MODEL.name}")
    if path.exists() or ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        raise CheckpointError(f"{ref} is not a checkpoint folder or .pth file")
    return load_hub_layout(download(ref), source=ref)


def load_default_checkpoint() -> tuple[Checkpoint, str | None]:
    """The real checkpoint when cached or downloadable, else the small bundled model and a sentence saying so."""
    try:
        return load_checkpoint(DEFAULT_MODEL), None
    except CheckpointError as error:
        if not BUNDLED_MODEL.is_dir():
            raise
        log.warning(
            f"Running the small bundled model, not {DEFAULT_MODEL}: {error}. "
            f"For the real one, run once with network access, or: {download_command(DEFAULT_MODEL)}"
        )
        notice = (  # on the page, and so on every follower's phone: short, and no path of this computer
            f"Running the small bundled model: {DEFAULT_MODEL} could not be loaded here. The server's log says why "
            "and how to get it."
        )
        return load_checkpoint(BUNDLED_NAME), notice


def download_command(repo_id: str) -> str:
    """The shell command that puts the files this demo reads into the Hugging Face cache, as printed runnable."""
    beside = Path(sys.executable).parent / "hf"  # the venv's own client, whether or not the venv is activated
    hf = shlex.quote(str(beside)) if beside.is_file() else "hf"
    return " ".join([hf, "download", repo_id, *HUB_FILES, WEIGHTS[0]])


def download(repo_id: str) -> Path:
    """The hub files this demo needs, from the local cache or else the hub; nothing else is fetched."""
    from huggingface_hub import constants
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    try:
        return fetch(repo_id, local_files_only=True)
    except EntryNotFoundError:  # huggingface_hub's LocalEntryNotFoundError: not (wholly) in the cache yet
        pass
    if constants.HF_HUB_OFFLINE:
        raise CheckpointError(f"{repo_id} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set")
    if not reachable(constants.ENDPOINT):
        raise CheckpointError(
            f"{repo_id} is not in the local Hugging Face cache and {constants.ENDPOINT} is out of reach"
        )
    size = " (about 840 MB, once)" if repo_id == DEFAULT_MODEL else ""
    log.info("downloading %s%s from %s into %s", repo_id, size, constants.ENDPOINT, constants.HF_HUB_CACHE)
    try:
        folder = fetch(repo_id, local_files_only=False)
    except RepositoryNotFoundError as error:
        raise CheckpointError(
            f"{repo_id} is not a model repository on {constants.ENDPOINT} (or it is private or gated)"
        ) from error
    except CheckpointError:
        raise
    except Exception as error:  # the hub client's transport errors differ between its versions (requests, httpx)
        reason = first_line(error).rstrip(".")
        raise CheckpointError(
            f"the download of {repo_id} from {constants.ENDPOINT} failed ({reason}); run again to finish it: "
            f"the files already complete stay in {constants.HF_HUB_CACHE}"
        ) from error
    log.info("%s is in %s", repo_id, folder)
    return folder


def fetch(repo_id: str, local_files_only: bool) -> Path:
    """The folder holding every file of HUB_FILES and the weights for a hub repository."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        paths = [Path(hf_hub_download(repo_id, name, local_files_only=local_files_only)) for name in HUB_FILES]
    except EntryNotFoundError as error:
        if local_files_only:
            raise
        raise CheckpointError(f"{repo_id} lacks a file this demo reads ({first_line(error)})") from error
    fetch_weights(repo_id, local_files_only)
    return paths[0].parent


def fetch_weights(repo_id: str, local_files_only: bool) -> Path:
    """model.safetensors, or pytorch_model.bin where the repository has no safetensors (read with weights_only)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id, WEIGHTS[0], local_files_only=local_files_only))
    except EntryNotFoundError as missing:
        try:
            path = Path(hf_hub_download(repo_id, WEIGHTS[1], local_files_only=local_files_only))
        except EntryNotFoundError as error:
            if local_files_only:
                raise missing from None
            raise CheckpointError(f"{repo_id} has neither {WEIGHTS[0]} nor {WEIGHTS[1]}") from error
    log.info("%s has no %s: reading %s with weights_only=True", repo_id, WEIGHTS[0], WEIGHTS[1])
    return path


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host opens quickly (the hub client itself retries for ~20 s)."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def load_hub_layout(folder: Path, source: str) -> Checkpoint:
    """A folder laid out like the hub: config.json, weights, vocab.json, merges.txt, tokenizer_config.json."""
    raw = read_json(folder / "config.json")
    config, lang2id = config_from_hub(raw, folder / "config.json")
    tokenizer_config = folder / "tokenizer_config.json"
    lowercases = (
        read_json(tokenizer_config).get("do_lowercase_and_remove_accent", True)
        if (tokenizer_config.is_file())
        else True
    )  # transformers' XLMTokenizer default
    return Checkpoint(
        source=source,
        config=config,
        lang2id=lang2id,
        state_dict=read_weights(folder),
        vocab=read_json(require(folder / "vocab.json")),
        merges_path=require(folder / "merges.txt"),
        config_lowercases=bool(lowercases),
    )


def config_from_hub(raw: dict, path: Path) -> tuple[XLMConfig, dict[str, int]]:
    """XLMConfig and language ids from a transformers config.json, refusing variants this port lacks."""
    if raw.get("model_type", "xlm") != "xlm":
        raise CheckpointError(f"{path} describes a {raw['model_type']} model, not XLM")
    unsupported = {
        "asm": raw.get("asm", False),
        "sinusoidal_embeddings": raw.get("sinusoidal_embeddings", False),
        "use_lang_emb": not raw.get("use_lang_emb", True),
        "gelu_activation": not raw.get("gelu_activation", True),
    }
    if any(unsupported.values()):
        names = ", ".join(k for k, v in unsupported.items() if v)
        raise CheckpointError(f"{path} asks for XLM options this demo does not implement: {names}")
    if raw.get("causal") is False:
        log.info("%s says causal: false; attention is causal anyway, as the CLM was trained", path)
    lang2id = {str(k): int(v) for k, v in raw.get("lang2id", {}).items()}
    config = XLMConfig(
        vocab_size=config_number(raw, "vocab_size", int, path),
        dim=config_number(raw, "emb_dim", int, path),
        n_layers=config_number(raw, "n_layers", int, path),
        n_heads=config_number(raw, "n_heads", int, path),
        n_langs=config_number(raw, "n_langs", int, path, default=len(lang2id)),
        max_positions=config_number(raw, "max_position_embeddings", int, path, default=512),
        layer_norm_eps=config_number(raw, "layer_norm_eps", float, path, default=1e-12),
    )
    return config, checked_langs(lang2id, config, path)


def config_number(raw: dict, field: str, kind: type, path: Path, default: float | None = None) -> float:
    """One numeric field of config.json, named in the sentence when it is missing or not a number."""
    if field not in raw and default is None:
        raise CheckpointError(f"{path} has no {field}, which the model's shape needs")
    value = raw.get(field, default)
    try:
        number = kind(value)
        if isinstance(value, bool) or number != float(value):  # true is no number; 6.5 layers no whole one
            raise ValueError
    except (TypeError, ValueError):
        whole = "a whole number" if kind is int else "a number"
        raise CheckpointError(f"{path}: {field} must be {whole}, not {value!r}") from None
    return number


def checked_langs(lang2id: dict[str, int], config: XLMConfig, path: Path) -> dict[str, int]:
    """The language ids, each a row of the language embedding."""
    if sorted(lang2id.values()) != list(range(config.n_langs)):
        raise CheckpointError(f"{path} maps languages {lang2id} onto {config.n_langs} language embeddings")
    return dict(sorted(lang2id.items(), key=lambda item: item[1]))


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """model.safetensors first, else pytorch_model.bin read without running any of its code."""
    safetensors_path = folder / "model.safetensors"
    if safetensors_path.is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(safetensors_path)
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{safetensors_path} is not a readable safetensors file ({error})") from error
    bin_path = folder / "pytorch_model.bin"
    if bin_path.is_file():
        return safe_torch_load(bin_path)
    raise CheckpointError(f"{folder} has neither model.safetensors nor pytorch_model.bin")


def safe_torch_load(path: Path) -> dict:
    """torch.load with weights_only=True: a pickle that would run code is refused, never run."""
    try:
        # Mapping avoids a copy, but only the zip format (torch >= 1.6) can be mapped.
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{path} holds more than tensors and was refused unread: {first_line(error)}") from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable PyTorch file ({first_line(error)})") from error


def load_release(pth: Path) -> Checkpoint:
    """An original facebookresearch/XLM checkpoint (.pth with model, params, dico_word2id) and its codes."""
    saved = safe_torch_load(pth)
    try:
        params, word2id, weights = saved["params"], saved["dico_word2id"], saved["model"]
    except (KeyError, TypeError) as error:
        raise CheckpointError(f"{pth} is not an XLM release checkpoint (no {error})") from error
    codes = sorted(p for p in pth.parent.glob("codes*") if p.is_file())
    if not codes:
        raise CheckpointError(f"no BPE codes file (codes*) beside {pth}")
    lang2id = {str(k): int(v) for k, v in params.get("lang2id", {}).items()}
    hub_config = {
        "vocab_size": params.get("n_words", len(word2id)),
        "emb_dim": params.get("emb_dim"),
        "n_layers": params.get("n_layers"),
        "n_heads": params.get("n_heads"),
        "n_langs": params.get("n_langs", len(lang2id)),
        "lang2id": lang2id,
        "asm": params.get("asm", False),
        "sinusoidal_embeddings": params.get("sinusoidal_embeddings", False),
        "use_lang_emb": params.get("use_lang_emb", True),
        "gelu_activation": params.get("gelu_activation", True),
    }
    config, lang2id = config_from_hub(hub_config, pth)
    return Checkpoint(
        source=str(pth),
        config=config,
        lang2id=lang2id,
        state_dict=release_to_hub_names(weights),
        vocab=release_vocab(word2id),
        merges_path=codes[0],
        config_lowercases=False,  # XLM's own preprocessing never lowercases
    )


def release_to_hub_names(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original names -> transformers': pred_layer.* as is, the rest under transformer. (its conversion rule)."""
    renamed = {}
    for name, tensor in weights.items():
        name = name.removeprefix("module.")  # saved from a DistributedDataParallel wrapper
        renamed[name if "pred_layer" in name else f"transformer.{name}"] = tensor
    return renamed


def release_vocab(word2id: dict[str, int]) -> dict[str, int]:
    """fastBPE words -> transformers' vocab.json: "xx@@" becomes "xx", a word-final "yy" becomes "yy</w>"."""
    return {
        word.replace("@@", "") if "@@" in word or i < N_SPECIAL_TOKENS else f"{word}</w>": i
        for word, i in word2id.items()
    }


def read_json(path: Path) -> dict:
    """A JSON object from a file, or a CheckpointError naming the file."""
    try:
        value = json.loads(require(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from error
    if not isinstance(value, dict):
        raise CheckpointError(f"{path} should hold a JSON object")
    return value


def require(path: Path) -> Path:
    """The path, if that file exists."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    return path


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, for one-sentence errors."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
