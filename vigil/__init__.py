"""Vigil: video surveillance for schools."""

__version__ = "0.1.0"
