"""The page's "Fill the blank" section."""
