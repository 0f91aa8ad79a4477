"""taiwa (対話): social listening and engagement, with a person approving every reply."""

__version__ = "0.1.0"
