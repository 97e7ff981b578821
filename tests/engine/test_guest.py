"""An Engine is a guest in its user's process: loading and using one changes nothing outside it."""

import threading

import pytest
import torch
from threadpoolctl import threadpool_info

from xlm_demo.engine import Engine
from xlm_demo.engine.sampling import GREEDY
from xlm_demo.model.checkpoint import load_checkpoint
from xlm_demo.model.weights import build_model
from xlm_demo.model.xlm import Linear


@pytest.fixture
def two_torch_threads():
    """torch at two threads for the test (a one-core machine would make the thread checks vacuous), then as before."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def thread_pools() -> list[tuple[str, int]]:
    return [(pool["prefix"], pool["num_threads"]) for pool in threadpool_info()]


def test_loading_and_using_an_engine_leaves_threads_and_other_models_as_they_were(tiny_model, two_torch_threads):
    # A user's own copy of the same network, built from the same class, never handed to an engine.
    theirs = build_model(*_config_and_weights(tiny_model[0])).eval()
    ids, langs = torch.tensor([[1, 17, 42, 99, 5, 63, 7, 118]]), torch.tensor([[1]])
    with torch.inference_mode():
        before = theirs.logits(theirs(ids, langs))
    threads, pools = torch.get_num_threads(), thread_pools()

    engine = Engine.load(str(tiny_model[0]), device="cpu", products="openblas")  # the one that switches most
    engine.predict("The cat sat", "en")
    engine.compare("Die Katze", top_k=3)
    list(engine.generate(engine.encode("The cat", "en", reserve=3), 3, GREEDY))

    assert all(layer.openblas for layer in engine.model.modules() if isinstance(layer, Linear))
    assert not any(layer.openblas for layer in theirs.modules() if isinstance(layer, Linear))
    assert torch.get_num_threads() == threads
    assert thread_pools() == pools
    with torch.inference_mode():
        after = theirs.logits(theirs(ids, langs))
    assert torch.equal(before, after)  # bit for bit: same products, same kernels, same threads


@pytest.mark.parametrize("where", ["this thread", "a new thread"])
def test_torch_runs_one_thread_during_the_engines_calls_only(tiny_model, two_torch_threads, where):
    engine = Engine.load(str(tiny_model[0]), device="cpu", products="openblas")
    seen = []
    engine.model.blocks[0].register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))

    def use() -> None:
        engine.predict("The cat sat", "en")
        seen.append(("after", torch.get_num_threads()))

    if where == "this thread":
        use()
    else:  # a thread whose torch pool is sized on first use, inside the engine's call
        worker = threading.Thread(target=use)
        worker.start()
        worker.join()
    assert seen == [1, ("after", 2)]


@pytest.mark.parametrize("products", ["auto", "openblas", "torch"])
def test_the_engines_layers_follow_its_product_library(tiny_model, products):
    engine = Engine.load(str(tiny_model[0]), device="cpu", products=products)
    assert engine.products in ("openblas", "torch") if products == "auto" else engine.products == products
    layers = [layer for layer in engine.model.modules() if isinstance(layer, Linear)]
    assert layers and all(layer.openblas == (engine.products == "openblas") for layer in layers)
    with torch.inference_mode():
        probs = engine.predict("The cat sat", "en", top_k=3)
    assert 0 < probs.candidates[0].prob <= 1


def _config_and_weights(folder):
    checkpoint = load_checkpoint(str(folder))
    return checkpoint.config, checkpoint.state_dict


def test_an_engine_call_that_fails_still_gives_torch_its_threads_back(tiny_model, two_torch_threads):
    engine = Engine.load(str(tiny_model[0]), device="cpu", products="openblas")  # the one with a thread scope
    threads, pools = torch.get_num_threads(), thread_pools()
    with pytest.raises(ValueError, match="top-k must be between"):
        engine.predict("The cat sat", "en", top_k=0)  # raises inside the engine's thread scope
    assert torch.get_num_threads() == threads == 2
    assert thread_pools() == pools


def test_the_thread_scope_entered_inside_itself_limits_until_the_outer_one_ends(tiny_model, two_torch_threads):
    engine = Engine.load(str(tiny_model[0]), device="cpu", products="openblas")
    seen = []
    for _ in range(2):  # entered again after it ended, it limits again
        with engine.thread_scope():
            with engine.thread_scope():  # a continued token's step enters it inside itself
                seen.append(torch.get_num_threads())
            seen.append(torch.get_num_threads())
        seen.append(torch.get_num_threads())
    assert seen == [1, 1, 2, 1, 1, 2]
