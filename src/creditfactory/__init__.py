"""creditfactory: digital, data-driven lending for every bank."""

__version__ = "0.1.0"
