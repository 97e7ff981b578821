"""xlm-demo {tokenize,score,predict,fill,lens,generate,attention,attribute,serve,talk}: the engine from a
terminal."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from .engine import Engine
from .engine.engine import check_max_new_tokens
from .engine.fill import MASK, split_words
from .engine.sampling import GREEDY, SamplingParams
from .inside.attention import attention
from .inside.attribution import METHODS, attribute, token_id
from .inside.lens import logit_lens
from .model import languages
from .model.checkpoint import DEFAULT_MODEL
from .page.requests import UserError
from .payloads import (
    attention_payload,
    attribution_payload,
    fill_payload,
    generate_payload,
    lens_payload,
    predict_payload,
    score_payload,
    tokenize_payload,
)

# A caller's mistake: the command line's own and the engine's (a ValueError, CheckpointError and WeightError among
# them) are told in one line and exit 2, as a file that cannot be read is.
USER_ERRORS = (UserError, ValueError, OSError)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr and exit 2."""

    def error(self, message: str) -> None:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each option's default after its help, unless the help says it in words; examples kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        return help_text if "default" in help_text else super()._get_help_string(action)


PROG = "xlm-demo"  # the script `make setup` installs; `python -m xlm_demo` is the same
# Two examples per command, shown under its --help; tests/ways_in/test_docs.py checks their flags too.
EXAMPLES = {
    "tokenize": ['--lang de "Die Katze sitzt auf der Matte."', '--literal-specials "a <special1> b"'],
    "score": ['--lang en "Wikipedia was used to"', '--lang de --json "Guten Morgen, wie geht es dir?"'],
    "predict": ['--lang en --top-k 5 "The weather in Berlin is"', '--lang de --json "Es regnet. </s> Morgen"'],
    "fill": [
        '--lang en --top-k 10 --candidates Germany --json "The capital of <special1> is Berlin ."',
        '--lang de "Die Katze schläft auf dem <special1> ."',
    ],
    "lens": ['--lang de --top-k 5 "Die Katze sitzt auf der"', '--lang en --json "The capital of Germany is"'],
    "generate": [
        '--lang de --max-new-tokens 20 "Heute ist"',
        '--lang en --temperature 0.8 --top-p 0.9 --seed 1 "Once upon a time"',
    ],
    "attention": ['--lang en --position 4 --json "The weather in Berlin is"', '--lang de "Die Katze sitzt auf der"'],
    "attribute": [
        '--lang en --target good --contrast bad "The food was really"',
        '--lang de --method integrated_gradients --steps 32 "Die Katze sitzt auf der"',
    ],
    "serve": ["--port 8080", "--model bundled --host 0.0.0.0"],
    "talk": ["--model bundled", "--port 8080"],
}


def examples(lines: list[str]) -> str:
    """An epilog of example command lines."""
    return "examples:\n" + "\n".join(f"  {PROG} {line}" for line in lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per engine question, shared model options on each."""
    model_options = argparse.ArgumentParser(add_help=False)
    model_options.add_argument(
        "--model",
        help=f"hub id, hub-layout folder, original XLM .pth, or bundled: the small model in assets/xlm-mini-ende "
        f"(default: {DEFAULT_MODEL}, or the bundled one when that cannot be loaded or downloaded)",
    )
    model_options.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    model_options.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16", "float16"],
        help="bfloat16 on the CPU keeps the weights in bfloat16, the activations in float32; float16 is for GPUs",
    )
    model_options.add_argument(
        "--quantize",
        default="none",
        choices=["none", "int8"],
        help="int8 runs the linear layers in dynamic int8 on the CPU: faster, probabilities within a few "
        "thousandths, no attribution",
    )
    model_options.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log how the model was loaded and the fidelity choices made (default: off; serve always logs)",
    )

    text_options = argparse.ArgumentParser(add_help=False, parents=[model_options])
    text_options.add_argument(
        "--lang",
        help="a language of the checkpoint's lang2id (de or en for the default model), with whose Moses rules "
        "and id the text is run (default: en when the checkpoint has English, else its first)",
    )
    text_options.add_argument("--json", action="store_true", help="print JSON instead of a table (default: off)")
    text_options.add_argument(
        "--literal-specials",
        action="store_true",
        help="read <s>, </s>, <special1> ... in the text as plain characters (default: off, they are the special "
        "tokens)",
    )
    text_options.add_argument("text", help="the text; - reads it from standard input")

    parser = OneLineParser(
        prog=PROG,
        description=__doc__,
        formatter_class=HelpFormatter,
        epilog=examples([f"predict {EXAMPLES['predict'][0]}", f"serve {EXAMPLES['serve'][0]}"])
        + f"\n\n{PROG} COMMAND --help lists a command's options.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    def command(name: str, parents: list, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            parents=parents,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            formatter_class=HelpFormatter,
            epilog=examples([f"{name} {line}" for line in EXAMPLES[name]]),
        )

    command("tokenize", [text_options], "the ids the model is fed")
    command("score", [text_options], "each token's probability given its prefix")
    predict = command("predict", [text_options], "the next-token distribution")
    predict.add_argument("--top-k", type=int, default=10, help="how many candidates to list (1-1000)")
    fill = command("fill", [text_options], f"words for the text's one blank ({MASK}), ranked by the whole text")
    fill.add_argument("--top-k", type=int, default=10, help="how many candidates to list (1-50)")
    fill.add_argument(
        "--candidates",
        help="words of your own, comma-separated: always listed, ranked among the others (default: none)",
    )
    lens = command("lens", [text_options], "the next-token distribution read from every layer")
    lens.add_argument("--top-k", type=int, default=10, help="how many candidates to list per layer (1-1000)")
    lens.add_argument("--target", type=int, help="token id to follow through the layers (default: the final top-1)")
    generate = command("generate", [text_options], "continue the text")
    generate.add_argument("--max-new-tokens", type=int, default=20, help="how many tokens to add (1-256)")
    generate.add_argument(
        "--greedy",
        action="store_true",
        help="always the most probable token (default: on unless a sampling option below is given)",
    )
    generate.add_argument(
        "--temperature", type=float, help="sample at this temperature, 0-10, 0 = greedy (default: 1 when sampling)"
    )
    generate.add_argument("--top-k", type=int, help="sample among the k most probable tokens only (default: all)")
    generate.add_argument(
        "--top-p", type=float, help="sample among the most probable tokens holding mass p (default: 1, all)"
    )
    generate.add_argument(
        "--seed", type=int, help="seed for sampling, for a repeatable continuation (default: a random one, printed)"
    )
    generate.add_argument(
        "--continue-lang", help="language id the new tokens are fed with (default: --lang, the text's)"
    )
    attend = command("attention", [text_options], "each layer's and head's attention")
    attend.add_argument("--position", type=int, help="the query position (default: the last; 0 is the start token)")
    explain = command("attribute", [text_options], "what the next token rests on")
    explain.add_argument("--target", help="id or token to explain (default: the top candidate)")
    explain.add_argument("--contrast", help="id or token: explain the target rather than this one (default: none)")
    explain.add_argument(
        "--method", default="grad_x_input", choices=METHODS, help="gradient × input, or integrated gradients"
    )
    explain.add_argument("--steps", type=int, default=16, help="integrated gradients' steps (1-64)")
    server_options = argparse.ArgumentParser(add_help=False, parents=[model_options])
    server_options.add_argument("--port", type=int, default=7860, help="port to listen on")
    server_options.add_argument(
        "--forwarded-allow-ips",
        help="proxies whose X-Forwarded-For names the client, comma-separated addresses or networks, * for every "
        "peer (default: $FORWARDED_ALLOW_IPS, else 127.0.0.1,::1; every peer on a Hugging Face Space)",
    )
    serve = command("serve", [server_options], "start the web demo")
    serve.add_argument("--host", help="address to listen on (default: 127.0.0.1; 0.0.0.0 on a Hugging Face Space)")
    serve.add_argument("--share", action="store_true", help="ask Gradio for a public share link (default: off)")
    serve.add_argument(
        "--replicas", type=int, default=0,
        help="run the model on this many replicas on Ray, on this machine or the cluster RAY_ADDRESS names; the "
        "page forwards to them (needs the cluster extra; default: 0, the model in this process)",
    )  # fmt: skip
    serve.add_argument("--replica-cpus", type=float, default=1.0, help="cores Ray gives each replica")
    command("talk", [server_options], "start the web demo for a talk: on the network, its address and QR code shown")
    return parser


def sampling_from(args: argparse.Namespace) -> SamplingParams:
    """Greedy unless a sampling option is given; both at once is a mistake."""
    options = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p, "seed": args.seed}
    given = {k: v for k, v in options.items() if v is not None}
    if args.greedy and given:
        raise UserError(f"--greedy cannot be combined with --{next(iter(given)).replace('_', '-')}")
    return SamplingParams(**given).resolved() if given else GREEDY


def run(args: argparse.Namespace) -> dict | str:
    """Answer one sub-command: a JSON-ready dict, or a ready table."""
    if args.command == "serve":
        from .server import serve

        proxies = args.forwarded_allow_ips
        serve(args.model, args.device, args.dtype, args.quantize, args.host, args.port, args.share, proxies,
              replicas=args.replicas, replica_cpus=args.replica_cpus)  # fmt: skip
        return ""
    if args.command == "talk":
        from .server import talk

        talk(args.model, args.device, args.dtype, args.quantize, args.port, args.forwarded_allow_ips)
        return ""
    text = sys.stdin.read() if args.text == "-" else args.text
    sampling = sampling_from(args) if args.command == "generate" else None
    engine = Engine.load(args.model, device=args.device, dtype=args.dtype, quantize=args.quantize)
    lang, literal = engine.check_lang(args.lang or languages.default(engine.lang2id)), args.literal_specials
    if args.command == "tokenize":
        return tokenize_payload(engine.encode(text, lang, literal=literal), engine.tokenizer)
    if args.command == "score":
        encoded = engine.encode(text, lang, literal=literal)
        return score_payload(encoded, engine.analyse(encoded).scores, engine.model.config.vocab_size)
    if args.command == "predict":
        return predict_payload(engine.predict_encoded(engine.encode(text, lang, literal=literal), top_k=args.top_k))
    if args.command == "fill":
        if literal:
            raise UserError(f"fill reads {MASK} as the blank; leave out --literal-specials")
        return fill_payload(engine.fill(text, lang, args.top_k, split_words(args.candidates)))
    if args.command == "attention":
        encoded = engine.encode(text, lang, literal=literal)
        return attention_payload(attention(engine, encoded, args.position), engine.tokenizer)
    if args.command == "attribute":
        target, contrast = token_id(engine, args.target, "target"), token_id(engine, args.contrast, "contrast")
        encoded = engine.encode(text, lang, literal=literal)
        return attribution_payload(
            attribute(engine, encoded, target, contrast, args.method, args.steps), engine.tokenizer
        )
    if args.command == "lens":
        encoded = engine.encode(text, lang, literal=literal)
        return lens_payload(logit_lens(engine, encoded, top_k=args.top_k, target=args.target))
    encoded = engine.encode(text, lang, reserve=check_max_new_tokens(args.max_new_tokens), literal=literal)
    continue_lang = engine.check_lang(args.continue_lang or lang)
    steps = list(engine.generate(encoded, args.max_new_tokens, sampling, lang=continue_lang))
    continued = engine.decode(encoded.input_ids + [s.id for s in steps], lang, literal=literal)
    payload = generate_payload(encoded, steps, continued, sampling.seed, continue_lang)
    return payload if args.json else render_generate(payload, engine.decode(encoded.input_ids, lang, literal=literal))


def render(command: str, payload: dict) -> str:
    """A short human-readable view of a payload."""
    if command == "tokenize":
        return "\n".join(f"{i:>6}  {t}" for i, t in zip(payload["input_ids"], payload["tokens"], strict=True))
    if command == "predict":
        rows = [f"entropy {payload['entropy']:.3f} nats"]
        rows += [f"{c['rank']:>4}  {c['prob']:8.4f}  {c['token']}" for c in payload["candidates"]]
        return "\n".join(rows)
    if command == "fill":
        rows = [f"{'log p(text)':>12}  {'share':>6}  filled with"]
        rows += [f"{c['logprob']:12.3f}  {c['prob']:6.1%}  {c['text']}" for c in payload["candidates"]]
        return "\n".join(rows)
    if command == "attention":
        return render_attention(payload)
    if command == "attribute":
        return render_attribution(payload)
    if command == "lens":
        kinds = list(payload["layers"][0]["subword_mass"])  # each language's own subwords, then shared
        rows = [
            "layer  entropy  KL to final  target p (rank)  " + "".join(f"{k:>7} " for k in kinds) + " top candidates"
        ]
        for r in payload["layers"]:
            target, mass = r["target"], r["subword_mass"]
            rows.append(
                f"{r['layer']:>5}  {r['entropy']:7.3f}  {r['kl_to_final']:11.3f}  {target['prob']:8.4f} "
                f"({target['rank']:>5})  "
                + "".join(f"{mass[k]:7.1%} " for k in kinds)
                + " "
                + " ".join(c["token"] for c in r["candidates"])
            )
        return "\n".join(rows)
    return "\n".join(
        f"{t['token']:<20} " + ("-" if t["prob"] is None else f"{t['prob']:.4f}  rank {t['rank']}")
        for t in payload["tokens"]
    )


def render_generate(payload: dict, prompt: str) -> str:
    """The text with ▸ where the continuation starts, how its tokens were chosen, and each step's token."""
    text, seed = payload["text"], payload["seed"]
    start = shared_start(prompt, text)  # the whole prompt, unless detokenizing joined across its end
    chosen = "greedy" if seed is None else f"sampled with seed {seed} (--seed {seed} repeats it)"
    rows = [
        f"{text[:start].rstrip()} ▸ {text[start:].lstrip()}",
        f"{chosen}; new tokens under the {payload['continue_lang']} id",
        f"{'step':>4}  {'prob':>8}  {'rank':>5}  token",
    ]
    rows += [f"{i:>4}  {s['prob']:8.4f}  {s['rank']:>5}  {s['token']}" for i, s in enumerate(payload["steps"], 1)]
    return "\n".join(rows)


def shared_start(a: str, b: str) -> int:
    """How many leading characters two texts have in common."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def render_attention(payload: dict, shown: int = 3) -> str:
    """Each layer's and head's most attended positions."""
    tokens = payload["tokens"]
    rows = [f"query: position {payload['position']} ({tokens[-1]})"]
    for layer, heads in enumerate(payload["weights"], start=1):
        for head, weights in enumerate(heads, start=1):
            top = sorted(range(len(weights)), key=lambda i: -weights[i])[:shown]
            rows.append(f"layer {layer} head {head}:  " + "  ".join(f"{tokens[i]} {weights[i]:.2f}" for i in top))
    return "\n".join(rows)


def render_attribution(payload: dict) -> str:
    """Each position's score and its token, position and language shares."""
    target = payload["target"]["token"]
    if payload["contrast"]:
        target += f" rather than {payload['contrast']['token']}"
    head = f"{payload['method']} for {target}: f = {payload['value']:.4f}"
    if payload["completeness_error"] is not None:
        head += f", completeness error {payload['completeness_error']:.2%}"
    rows = [head, f"{'token':<20} {'score':>9} {'token':>9} {'position':>9} {'language':>9}"]
    rows += [
        f"{t['token']:<20} {t['score']:9.4f} {t['token_part']:9.4f} {t['position_part']:9.4f} {t['language_part']:9.4f}"
        for t in payload["tokens"]
    ]
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: exit 0 on success, 2 with one line on stderr for any mistake of the caller's."""
    args = build_parser().parse_args(argv)
    verbose = args.verbose or args.command in ("serve", "talk")
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="note: %(message)s", stream=sys.stderr, force=True)
    for name in ("httpx", "httpx2"):  # Gradio's start-up requests and the hub client's are not news
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("huggingface_hub").propagate = False  # it prints its own warnings (a download's retries)
    try:
        payload = run(args)
    except USER_ERRORS as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if isinstance(payload, dict):
        print(json.dumps(payload, ensure_ascii=False) if args.json else render(args.command, payload))
    elif payload:
        print(payload)
    return 0
