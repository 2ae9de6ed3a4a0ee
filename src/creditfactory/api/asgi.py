"""The API as uvicorn serves it: ``creditfactory serve`` (and each of its worker processes)
builds the container from the environment and warms the decision path before the first request.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from creditfactory.api.app import create_app
from creditfactory.bootstrap import Container, build
from creditfactory.config import Settings

log = logging.getLogger("creditfactory.api")


def warm(container: Container) -> list[str]:
    """What the first application would otherwise wait for: the modeling stack imported, the
    published strategies compiled, their models loaded and the newest portrait read."""
    warmer = getattr(container.decider, "warm", None)
    if warmer is None:
        return []
    with container.uow() as uow:
        ready = warmer(uow)
    log.info("decisions ready: %s", ", ".join(ready) or "nothing published yet")
    return list(ready)


def serve_app(container: Container) -> FastAPI:
    """The app of one server process: ``create_app`` after :func:`warm`."""
    warm(container)
    return create_app(container)


def from_environment() -> FastAPI:
    """The app of a worker process (``uvicorn --factory``): settings from ``CREDITFACTORY_*``."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve_app(build(settings))
