"""The commands a user types, through Typer's runner (and ``serve`` as a real process)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from creditfactory.cli.main import app
from creditfactory.contract.docs import render_markdown

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def last_json(output: str) -> dict:  # type: ignore[type-arg]
    return json.loads(output.strip().splitlines()[-1])


def test_the_command_starts_without_scikit_learn_or_scipy() -> None:
    """Loading every domain's commands (as running any of them loads its own) imports neither
    scikit-learn nor SciPy (a second and half a second to import): they are imported only where
    a command measures an AUC or builds the graph in bulk."""
    code = (
        "import sys; from creditfactory.cli.main import LAZY; [e.load() for e in LAZY]; "
        "print(len(LAZY), sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    count, loaded = done.stdout.strip().split(" ", 1)
    assert int(count) > 10 and loaded == "[]"


class TestSandboxAndIngest:
    def test_generate_then_ingest_prints_counts_per_table(self, tmp_path: Path) -> None:
        data = str(tmp_path / "var")
        code, out = run(
            "--data-dir",
            data,
            "sandbox",
            "generate",
            "--customers",
            "400",
            "--seed",
            "3",
            "--out",
            str(tmp_path / "bank"),
            "--json",
        )
        assert code == 0, out
        generated = last_json(out)
        assert generated["rows"]["customers"] == 400
        assert (tmp_path / "bank" / "truth").is_dir()

        code, out = run("--data-dir", data, "ingest", str(tmp_path / "bank"), "--json")
        assert code == 0, out
        summary = last_json(out)
        assert summary["tables"]["customers"]["loaded"] == 400
        assert summary["rejected"] == 0
        assert summary["tables"]["account_flows"]["loaded"] == generated["rows"]["account_flows"]

        code, out = run("--data-dir", data, "ingest", str(tmp_path / "bank"), "--json")
        assert code == 0
        assert last_json(out)["loaded"] == 0
        assert "nothing changed" in out

    def test_missing_folder_is_one_clear_error(self, tmp_path: Path) -> None:
        code, out = run("--data-dir", str(tmp_path / "var"), "ingest", str(tmp_path / "nowhere"))
        assert code == 2
        assert "nowhere" in out and "does not exist" in out

    def test_bad_sandbox_size_is_refused(self, tmp_path: Path) -> None:
        code, out = run(
            "--data-dir",
            str(tmp_path / "var"),
            "sandbox",
            "generate",
            "--customers",
            "0",
            "--out",
            str(tmp_path / "x"),
        )
        assert code == 2
        assert "customers must be between" in out


class TestDemo:
    def test_demo_runs_end_to_end_and_ends_with_json(self, tmp_path: Path) -> None:
        code, out = run(
            "--data-dir", str(tmp_path / "var"), "demo", "--customers", "3000", "--days", "40", "--json"
        )
        assert code == 0, out
        figures = last_json(out)
        assert figures["customers"] == 3000
        assert figures["rejected"] == 0
        assert figures["tables"]["customers"] == 3000
        assert 0.0 < figures["true_bad_rate"] < 0.2
        assert figures["loans"] > 0
        assert sum(figures["by_tier"].values()) == figures["loans"]
        assert "Summary" in out and "五级分类" in out
        # every segment is scored by an approved model; the whitelist beats the population
        assert set(figures["models"]) == {"farmer", "merchant", "salaried", "other"}
        assert all(0.5 < m["truth_auc"] <= 1 for m in figures["models"].values())
        assert 0 < figures["whitelisted"] < 3000
        assert figures["whitelisted_bad_rate"] < figures["true_bad_rate"]
        # the sandbox's applicants went through the decision engine into servicing
        apps = figures["applications"]
        assert apps["by_kind"]["offer"].get("approved", 0) > 0
        assert apps["lines"] == apps["signed"] == sum(k.get("approved", 0) for k in apps["by_kind"].values())
        assert apps["by_kind"]["ring"].get("approved", 0) == 0 and apps["ring_stopped_share"] == 1.0
        assert "decided by county_online_decision" in out
        # a second run reuses the bank and the book and changes nothing
        code, again = run(
            "--data-dir", str(tmp_path / "var"), "demo", "--customers", "3000", "--days", "40", "--json"
        )
        assert code == 0, again
        repeat = last_json(again)
        assert (repeat["loaded"], repeat["loans"], repeat["outstanding"], repeat["whitelist_version"]) == (
            0,
            figures["loans"],
            figures["outstanding"],
            figures["whitelist_version"],
        )


class TestContractDocs:
    def test_committed_docs_match_the_declarations(self) -> None:
        committed = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
        assert committed == render_markdown(), "run: creditfactory contract docs --out docs/contract.md"


def _serve_two(tmp_path: Path, port: int, **popen: Any) -> subprocess.Popen[bytes]:
    """``creditfactory serve --workers 2`` on SQLite, its database made first (so that the two
    processes do not both create it)."""
    env = {**os.environ, "CREDITFACTORY_DATA_DIR": str(tmp_path / "var")}
    subprocess.run([sys.executable, "-m", "creditfactory.cli.main", "db", "upgrade"], env=env, check=True)
    return subprocess.Popen(
        [sys.executable, "-m", "creditfactory.cli.main", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **popen,
    )


def _workers(proc: subprocess.Popen[bytes]) -> set[int]:
    """The server processes the supervisor ``proc`` started (not its resource tracker)."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return {
        int(c)
        for c in children
        if "spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")
    }


def _tcp_sockets(port: int) -> list[tuple[str, int]]:
    """``(state, inode)`` of the TCP sockets on local ``port`` (``0A`` listening, ``01`` an
    established connection), from ``/proc/net/tcp``."""
    out = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            out.append((fields[3], int(fields[9])))
    return out


def _inodes(pid: int) -> set[int]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if link.startswith("socket:["):
            found.add(int(link[8:-1]))
    return found


def _listening(port: int, pids: set[int]) -> set[int]:
    """The processes of ``pids`` that listen on ``port``."""
    listening = {inode for state, inode in _tcp_sockets(port) if state == "0A"}
    return {p for p in pids if _inodes(p) & listening}


def _accepted(port: int, pids: set[int]) -> dict[int, int]:
    """How many connections to ``port`` each process of ``pids`` holds."""
    established = {inode for state, inode in _tcp_sockets(port) if state == "01"}
    return {p: len(_inodes(p) & established) for p in pids}


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _wait_for(proc: subprocess.Popen[bytes], check: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError(f"{what}: not within {seconds} s (exit {proc.poll()})")
        time.sleep(0.3)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
class TestServe:
    def test_serve_answers_health_and_docs(self, tmp_path: Path) -> None:
        port = _free_port()
        env = {**os.environ, "CREDITFACTORY_DATA_DIR": str(tmp_path / "var")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "creditfactory.cli.main", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.3)
            assert health.status_code == 200
            assert health.json()["database"] == "sqlite"
            assert health.json()["admitted"] == 1  # SQLite: one request at a time, on the event loop
            assert httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5).status_code == 200
            assert (
                "/v1/customers/{customer_id}"
                in httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()["paths"]
            )
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    def test_several_processes_each_listen_are_replaced_when_they_die_and_stop_on_sigterm(
        self, tmp_path: Path
    ) -> None:
        port = _free_port()
        proc = _serve_two(tmp_path, port)

        def sockets(pid: int) -> int:
            n = 0
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
                except OSError:  # closed meanwhile
                    pass
            return n

        try:
            _wait_for(
                proc,
                lambda: len(_workers(proc)) == 2 and all(sockets(p) for p in _workers(proc)),
                "two processes",
            )
            _wait_for(proc, lambda: _healthy(port), "health")
            # 20 keep-alive connections, as a gateway's pool keeps open, end ten and ten on the
            # two processes however the kernel first spread them (by itself it spreads them so
            # in fewer than 1 of 5 starts), and stay so
            _wait_for(proc, lambda: len(_listening(port, _workers(proc))) == 2, "two processes listening")
            clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}") for _ in range(20)]
            try:
                # ten and ten within a few rounds: a simulation of the rule, from twenty on one
                # process, needed at most 20 rounds in 100,000 starts
                for _ in range(25):
                    answers = [c.get("/health") for c in clients]
                    assert all(a.status_code == 200 for a in answers)
                assert {a.json()["admitted"] for a in answers} == {1}  # each of two: one at once
                held = _accepted(port, _workers(proc))
                assert sorted(held.values()) == [10, 10], held
                for _ in range(5):
                    assert all(c.get("/health").status_code == 200 for c in clients)
                assert _accepted(port, _workers(proc)) == held
            finally:
                for c in clients:
                    c.close()
            first = _workers(proc)
            victim = min(first)
            os.kill(victim, signal.SIGKILL)
            _wait_for(
                proc,
                lambda: len(_workers(proc)) == 2 and victim not in _workers(proc),
                "a replacement process",
            )
            _wait_for(proc, lambda: _healthy(port), "health after the replacement")
            last = _workers(proc)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=40) == 0
            assert not any(Path(f"/proc/{p}").exists() for p in first | last)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def test_the_processes_stop_when_their_supervisor_is_killed(self, tmp_path: Path) -> None:
        port = _free_port()
        proc = _serve_two(tmp_path, port)
        try:
            _wait_for(proc, lambda: _healthy(port), "health")
            workers = _workers(proc)
            assert len(workers) == 2
            proc.kill()  # no chance to stop them itself
            proc.wait()
            deadline = time.monotonic() + 30
            while any(Path(f"/proc/{w}").exists() and "Z" not in _state(w) for w in workers):
                assert time.monotonic() < deadline, "the workers outlived their supervisor"
                time.sleep(0.2)
            with pytest.raises(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def test_a_hang_up_that_is_ignored_stays_ignored(self, tmp_path: Path) -> None:
        """Under nohup (SIGHUP ignored) a hang-up of the whole group stops nothing; SIGTERM to
        the group then stops the supervisor and its workers gracefully."""
        port = _free_port()

        def nohup() -> None:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)

        proc = _serve_two(tmp_path, port, start_new_session=True, preexec_fn=nohup)
        try:
            _wait_for(proc, lambda: _healthy(port), "health")
            time.sleep(1)  # both workers listening
            os.killpg(proc.pid, signal.SIGHUP)
            time.sleep(1.5)
            assert proc.poll() is None
            assert all(_healthy(port) for _ in range(10))
            os.killpg(proc.pid, signal.SIGTERM)
            assert proc.wait(timeout=40) == 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def test_several_processes_on_a_taken_port_fail_at_once(self, tmp_path: Path) -> None:
        # taken by a socket that shares its port (SO_REUSEPORT), as another server's would be
        with socket.socket() as taken:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            env = {**os.environ, "CREDITFACTORY_DATA_DIR": str(tmp_path / "var")}
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "creditfactory.cli.main",
                    "serve",
                    "--port",
                    str(port),
                    "--workers",
                    "2",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert done.returncode != 0
        assert "Address already in use" in done.stderr + done.stdout
