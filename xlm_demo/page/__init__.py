"""The Gradio page: one sub-package per section, each with its layout, its events and its charts."""
