"""The API as uvicorn serves it: ``creditfactory serve`` (and each of its worker processes)
builds the container from the environment and warms the decision path before the first request.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import multiprocessing.synchronize
import signal
import socket
import sys
import time

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


# ------------------------------------------------------------------ several server processes


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket of its own for one worker, bound with ``SO_REUSEPORT``: the kernel then spreads
    incoming connections over the workers' sockets by a hash of each connection's addresses. One
    shared socket (uvicorn's ``--workers``) lets whichever process wakes first accept, so the
    long-lived keep-alive connections of a gateway or load balancer end up on one process."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _worker(
    host: str,
    port: int,
    factory: str,
    app_dir: str | None,
    log_level: str,
    access_log: bool,
    ready: multiprocessing.synchronize.Event,
) -> None:
    """One server process: its own socket and app (built by ``factory``); ``ready`` is set once
    it listens. It exits with 3 when it could not start."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                ready.set()

    if app_dir:
        sys.path.insert(0, app_dir)
    sock = _listening_socket(host, port)
    server = Server(uvicorn.Config(factory, factory=True, log_level=log_level, access_log=access_log))
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)


def serve_processes(
    *,
    host: str,
    port: int,
    workers: int,
    factory: str = "creditfactory.api.asgi:from_environment",
    app_dir: str | None = None,
    log_level: str = "info",
    access_log: bool = True,
) -> int:
    """Serve with ``workers`` processes, each listening on its own ``SO_REUSEPORT`` socket and
    building its app with ``factory`` (``module:function``, settings from the environment).

    The calling process supervises: SIGINT or SIGTERM stops every worker gracefully (each
    finishes its requests in flight). A worker that dies after it started listening is started
    again; one that dies before (the database out of reach, the app failing to build) stops
    everything, with exit code 1. Where the platform has no ``SO_REUSEPORT``, uvicorn's own
    workers (one shared socket) serve instead. Returns the exit code."""
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - not on Linux
        import uvicorn

        uvicorn.run(
            factory,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
            app_dir=app_dir or "",
            timeout_worker_healthcheck=60,
        )
        return 0
    # the port is tried here, once, so that a taken port is one clear error, not one per worker
    _listening_socket(host, port).close()
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    def start() -> tuple[multiprocessing.process.BaseProcess, multiprocessing.synchronize.Event]:
        ready = ctx.Event()
        proc = ctx.Process(target=_worker, args=(host, port, factory, app_dir, log_level, access_log, ready))
        proc.start()
        return proc, ready

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    procs: list[tuple[multiprocessing.process.BaseProcess, multiprocessing.synchronize.Event]] = []
    code = 0
    try:
        procs = [start() for _ in range(workers)]
        log.info("serving on %s:%s with %d processes (SO_REUSEPORT)", host, port, workers)
        while not stopping:
            multiprocessing.connection.wait([p.sentinel for p, _ in procs], timeout=0.5)
            for i, (p, ready) in enumerate(procs):
                if stopping or p.is_alive():
                    continue
                if not ready.is_set():
                    log.error("server process %s could not start (exit %s): stopping", p.pid, p.exitcode)
                    stopping, code = True, 1
                    break
                log.warning("server process %s exited with %s: starting another", p.pid, p.exitcode)
                procs[i] = start()
    finally:
        for p, _ in procs:
            if p.is_alive():
                p.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + 30
        for p, _ in procs:
            p.join(timeout=max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return code
