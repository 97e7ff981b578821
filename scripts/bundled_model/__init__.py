"""Build the small English/German XLM that ships in assets/xlm-mini-ende (project issue 4).

Run everything with `python -m scripts.bundled_model.build`; each module is one stage:
sources (Debian packages) -> corpus (clean, dedupe, split) -> moses + fastbpe (tokens) -> streams ->
train -> export (hub layout) -> evaluate -> card.
"""
