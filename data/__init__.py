"""The bundled data files, installed as the package `makemore.bundled` (see data/README.md)."""
