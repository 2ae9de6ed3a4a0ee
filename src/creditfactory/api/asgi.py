"""The API as uvicorn serves it: ``creditfactory serve`` (and each of its worker processes)
builds the container from the environment and warms the decision path before the first request.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

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


#: Objects allocated (net of those freed) between two collections of the youngest generation in
#: a server process, against the interpreter's 700. A decision allocates and frees tens of
#: thousands of objects, nearly all freed by reference counting; at 700 the collector ran 0.4
#: times a decision and took 0.24 ms of it, at 10,000 once in 75 decisions and 0.10 ms a decision
#: (600 in-process decisions on PostgreSQL, each collection timed through ``gc.callbacks``).
YOUNG_GENERATION = 10_000


def settle(app: FastAPI) -> FastAPI:
    """After start-up: what was built so far (modules, the compiled strategies, the models, the
    app) is moved out of the collector's reach (``gc.freeze``), so that its collections walk only
    what requests create; one more collection of the start-up objects would walk them all. The
    youngest generation is then collected every :data:`YOUNG_GENERATION` objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION, *gc.get_threshold()[1:])
    return app


def serve_app(container: Container) -> FastAPI:
    """The app of one server process: ``create_app`` after :func:`warm`, then :func:`settle`."""
    warm(container)
    return settle(create_app(container))


def from_environment() -> FastAPI:
    """The app of a worker process (``uvicorn --factory``): settings from ``CREDITFACTORY_*``."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve_app(build(settings))


# ------------------------------------------------------------------ several server processes


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket of its own for one worker, bound with ``SO_REUSEPORT``: the kernel then spreads
    incoming connections over the workers' sockets by a hash of each connection's addresses (at
    random: :mod:`creditfactory.api.balance` evens them out). One shared socket (uvicorn's
    ``--workers``) lets whichever process wakes first accept, so the long-lived keep-alive
    connections of a gateway or load balancer end up on one process."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _die_with(parent: int) -> None:
    """Have the kernel stop this process when the process that started it dies (Linux), so
    that no worker keeps serving without its supervisor."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not on Linux
        return
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def _worker(
    host: str,
    port: int,
    factory: str,
    app_dir: str | None,
    log_level: str,
    access_log: bool,
    ready: Any,
    parent: int,
    processes: int,
    connections: Any,
    slot: int,
) -> None:
    """One server process of ``processes``: its own socket and app (built by ``factory``, its
    settings told how many processes serve); ``ready`` (a shared byte) is set to 1 once it
    listens. ``connections[slot]`` is its count of connections, which its
    :class:`~creditfactory.api.balance.ConnectionBalance` keeps even with the others'. It exits
    with 3 when it could not start."""
    import uvicorn

    from creditfactory.api.balance import ConnectionBalance

    _die_with(parent)
    os.environ["CREDITFACTORY_API__PROCESSES"] = str(processes)
    # a hang-up of the whole group reaches the workers too: the supervisor decides, and stops
    # them with SIGTERM, which lets the requests in flight finish
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            held = self.server_state.connections
            self.config.loaded_app = ConnectionBalance(
                self.config.loaded_app, counts=connections, slot=slot, connections=lambda: len(held)
            )
            await super().startup(sockets)
            if self.started:
                connections[slot] = len(held)  # serving: the others may now send it connections
                ready.value = 1

    if app_dir:
        sys.path.insert(0, app_dir)
    sock = _listening_socket(host, port)
    server = Server(uvicorn.Config(factory, factory=True, log_level=log_level, access_log=access_log))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the group: already shut down
        pass
    if not server.started:
        sys.exit(3)


def _port_free(host: str, port: int) -> None:
    """Raise ``OSError`` (address in use) when anything listens on the port, another group of
    ``SO_REUSEPORT`` sockets included: the check binds without that option."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


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

    The calling process supervises. SIGINT, SIGTERM or SIGHUP stops every worker gracefully
    (each finishes its requests in flight); a worker stops by itself when the supervisor dies.
    A worker of the first start that dies before it listens (the database out of reach, the app
    failing to build) stops everything, with exit code 1. A worker that dies later is replaced;
    replacements that die again soon are started after a pause that doubles each time (up to
    30 s). A port already in use (by anything, another group of ``SO_REUSEPORT`` sockets
    included) is an ``OSError`` before any worker starts. Where the platform has no
    ``SO_REUSEPORT``, uvicorn's own workers (one shared socket) serve instead. Returns the exit
    code."""
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - not on Linux
        import uvicorn

        os.environ["CREDITFACTORY_API__PROCESSES"] = str(workers)  # inherited by uvicorn's workers

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
    _port_free(host, port)
    ctx = multiprocessing.get_context("spawn")
    # each process's connections, -1 while it does not serve (see api.balance); no lock: each
    # process writes its own slot only, and the supervisor a dead process's
    connections = ctx.RawArray("i", [-1] * workers)
    stopping = False
    me = os.getpid()

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    @dataclass
    class Slot:
        proc: multiprocessing.process.BaseProcess
        ready: Any
        started: float
        first: bool
        index: int
        pause: float = 0.0

    def start(first: bool, index: int, pause: float = 0.0) -> Slot:
        ready = ctx.RawValue("b", 0)  # no lock: a worker killed while setting it leaves none held
        proc = ctx.Process(
            target=_worker,
            args=(
                host,
                port,
                factory,
                app_dir,
                log_level,
                access_log,
                ready,
                me,
                workers,
                connections,
                index,
            ),
        )
        proc.start()
        return Slot(proc, ready, time.monotonic(), first, index, pause)

    # a hang-up stops the service, unless it is ignored (nohup): then it stays ignored
    handled = [signal.SIGINT, signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        handled.append(signal.SIGHUP)
    previous = {s: signal.signal(s, stop) for s in handled}
    slots: list[Slot] = []
    waiting: list[tuple[float, float, int]] = []  # (when, pause, index) of replacements to start
    code = 0
    try:
        for index in range(workers):
            if stopping:
                break
            slots.append(start(first=True, index=index))
        log.info("serving on %s:%s with %d processes (SO_REUSEPORT)", host, port, workers)
        while not stopping:
            multiprocessing.connection.wait([s.proc.sentinel for s in slots], timeout=0.5)
            now = time.monotonic()
            for slot in list(slots):
                if stopping or slot.proc.is_alive():
                    continue
                slots.remove(slot)
                slot.proc.join()
                connections[slot.index] = -1  # its connections went with it
                if slot.first and not slot.ready.value:
                    log.error(
                        "server process %s could not start (exit %s): stopping",
                        slot.proc.pid,
                        slot.proc.exitcode,
                    )
                    stopping, code = True, 1
                    break
                # a process that lived long is replaced at once; one that died soon after its
                # start waits twice as long as the one before it did
                pause = 0.0 if now - slot.started > 60 else min(30.0, max(1.0, 2 * slot.pause))
                log.warning(
                    "server process %s exited with %s: another in %.0f s",
                    slot.proc.pid,
                    slot.proc.exitcode,
                    pause,
                )
                waiting.append((now + pause, pause, slot.index))
            for when, pause, index in list(waiting):
                if not stopping and when <= now:
                    waiting.remove((when, pause, index))
                    slots.append(start(first=False, index=index, pause=pause))
    finally:
        for slot in slots:
            if slot.proc.is_alive():
                slot.proc.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + 30
        for slot in slots:
            slot.proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if slot.proc.is_alive():
                slot.proc.kill()
                slot.proc.join()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return code
