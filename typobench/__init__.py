"""typobench: how CLIP-style models fail under typographic and pixel attacks, and which neurons are to blame."""

__version__ = "0.1.0"
