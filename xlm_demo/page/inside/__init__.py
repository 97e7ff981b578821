"""The section inside the model: attention by layer and head, and attribution of the next token."""
