"""HTTP edge: ``create_app(container)``."""

from creditfactory.api.app import create_app

__all__ = ["create_app"]
