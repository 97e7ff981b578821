"""The layer-by-layer section: the logit lens under each language id, patching, and the whole-text verdict."""
