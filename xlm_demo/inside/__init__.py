"""Readings inside the model (the logit lens, attention, attribution): an engine and a text in, results out, no UI."""
