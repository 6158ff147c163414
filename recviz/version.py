"""The package's version, in a leaf module: pyproject.toml reads it, and stored datasets and runs
record it, without importing anything else of RecViz."""

__version__ = "0.1.0"
