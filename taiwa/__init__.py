"""taiwa (対話): social listening and engagement, with a person approving every reply."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("taiwa")     # one version source: pyproject.toml
except _metadata.PackageNotFoundError:          # pragma: no cover - running from a tree that was never installed
    __version__ = "0+unknown"
