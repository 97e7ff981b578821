"""The network as trained: the model, its weights and checkpoint formats, the tokenizer and BPE, the languages."""
