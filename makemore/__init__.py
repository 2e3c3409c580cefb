"""makemore: character-level language models that learn how items are spelled and make more of them."""

__version__ = "0.1.0"
