"""The server process's start-up (``creditfactory.api.asgi``)."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from creditfactory.api.asgi import YOUNG_GENERATION, settle


def test_a_settled_process_leaves_its_start_up_objects_out_of_the_collectors_walks() -> None:
    started = [{"strategy": n} for n in range(1_000)]  # built at start-up, kept for good
    app = FastAPI()
    gc.unfreeze()
    threshold = gc.get_threshold()
    try:
        assert settle(app) is app
        frozen = gc.get_freeze_count()
        assert frozen >= len(started)
        walked = {id(o) for o in gc.get_objects()}  # what the collector still walks
        assert not any(id(x) in walked for x in started)
        # and the young objects are collected less often, the older generations as before
        assert gc.get_threshold() == (YOUNG_GENERATION, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
