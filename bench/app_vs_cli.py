"""Benchmark: the same demo run through the app's window and through the CLI, quiet and loaded.

Run: .venv/bin/python bench/app_vs_cli.py [--before] [--repeats 5] [--load 4]
     [--load-session app|own] [--shape 300 512 512] [--json]

The demo phantom (``meddiag_desktop.demo``, the seed and spacing of bench/inference.py) is
written once as a DICOM series. Long-lived child processes open it the way each front end does
and then run the demo model on request:

- ``app``: the real MainWindow offscreen (``QT_QPA_PLATFORM=offscreen``), built as the GUI
  tests build it and started as ``main()`` starts it (``app.scheduling``): ``run_model`` on the
  open case, the worker thread, progress and status bar, storing the run in a throwaway case
  database, reopening the case and painting the overlay;
- ``app-before`` (with ``--before``): the same app without the issue-17 fix (it stays in the
  session it was started in), for before/after figures from the same run;
- ``cli``: ``meddiag infer FOLDER --model demo-lung-nodules --out DIR`` itself
  (``meddiag_desktop.cli.main``, no database), called again in the same process for each run
  so that its session stays cached as the app's does.

Each child does one warm-up run, then the parent alternates them (the order alternates too),
``--repeats`` times each, first on the quiet machine and then with ``--load`` busy-loop
processes that the bench starts and stops itself. Where the load runs matters on Linux, whose
scheduler shares the CPU between sessions first (autogroup): with ``--load-session app``
(default) it runs in the session the app is started in, as other programs started from the
same desktop session do, while the CLI runs in a session of its own, as from a terminal; with
``own`` the load has a session of its own and both front ends share the bench's.

The figure compared is the pipeline's own total (model load to findings, ``timings_s["total"]``),
which both front ends measure in the same code; the app's time including storing is printed
beside it, and per run the process's CPU seconds (the same work should cost the same), its
involuntary context switches and page faults, and for the app its GUI thread's CPU time and
the longest event-loop gap. Ratios are of medians within the same phase; the median of the
paired (adjacent) runs' ratios is printed too, as this shared machine's own load drifts. The
last lines are ``app/cli quiet: N.NN`` and ``app/cli loaded: N.NN`` (target <= 1.10).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

MODEL = "demo-lung-nodules"
SEED = 4242
SPACING_XYZ_MM = (0.68, 0.68, 1.0)
READY = "ready"
RUN_TIMEOUT_S = 1800.0
BEFORE_ENV = "MEDDIAG_BENCH_APP_BEFORE"  # the app child undoes the issue-17 fixes
GAP_TICK_MS = 50  # the event-loop gap meter's timer: ~ the app's own progress rate (20/s)


def _usage() -> tuple[float, int, int]:
    """CPU seconds of this process so far, involuntary context switches, minor page faults."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_nivcsw, usage.ru_minflt


def _reply(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def _commands() -> Any:
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            return
        yield command


def cli_child(folder: Path, workdir: Path) -> None:
    """The CLI's path: ``meddiag infer FOLDER --model demo-lung-nodules --out DIR``, its own
    argument defaults, discovery, loading and output files, in this process's main thread.

    The pipeline call inside (``run_to_end``) is wrapped only to read its result and this
    process's CPU time around it.
    """
    from meddiag_desktop import cli
    from meddiag_desktop.cli import model_commands

    real_run_to_end = model_commands.run_to_end
    seen: list[tuple[Any, tuple[float, int, int], tuple[float, int, int], float]] = []

    def measured_run_to_end(steps: Any, on_progress: Any = None) -> Any:
        before, started = _usage(), time.perf_counter()
        result = real_run_to_end(steps, on_progress)
        seen.append((result, before, _usage(), time.perf_counter() - started))
        return result

    model_commands.run_to_end = measured_run_to_end
    argv = ["infer", str(folder), "--model", MODEL, "--out", str(workdir / "cli-out")]

    def run() -> dict[str, Any]:
        seen.clear()
        if cli.main(argv) != 0:
            raise RuntimeError("meddiag infer failed")
        result, (cpu, switches, faults), (cpu_end, switches_end, faults_end), wall = seen[0]
        return {
            "cpu_s": cpu_end - cpu,
            "preempted": switches_end - switches,
            "page_faults": faults_end - faults,
            "plan": result.plan,
            "timings": result.timings_s,
            "wall_s": wall,
            "findings": len(result.findings),
            "provider": result.provider.short_name,
        }

    run()
    _reply({"status": READY, "pid": os.getpid(), "session": os.getsid(0)})
    for _command in _commands():
        _reply(run())


def app_child(folder: Path, workdir: Path) -> None:
    """The app's path: the real MainWindow offscreen, run_model, wait for the overlay."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from meddiag_desktop.app.scheduling import use_own_scheduling_group

    if not os.environ.get(BEFORE_ENV):
        use_own_scheduling_group()  # as main() does when the app starts
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from meddiag_desktop.app.inference_controller import FinishedRun, RunTag
    from meddiag_desktop.app.main import build_window, configure_pyqtgraph
    from meddiag_desktop.app.theme import apply_dark_theme
    from meddiag_desktop.inference.registry import ModelRegistry

    app = QApplication([])
    configure_pyqtgraph()
    apply_dark_theme(app)
    settings = QSettings(str(workdir / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("database/location", str(workdir / "cases.sqlite3"))
    window = build_window(settings)
    window.resize(1440, 900)
    window.show()
    card = ModelRegistry().find(MODEL)

    def wait_until(condition: Any, timeout_s: float = RUN_TIMEOUT_S) -> None:
        """Run the event loop (blocking, as the app does) until ``condition()`` holds."""
        loop = QEventLoop()
        deadline = time.monotonic() + timeout_s

        def check() -> None:
            if condition() or time.monotonic() > deadline:
                loop.quit()

        poll = QTimer()
        poll.setInterval(200)
        poll.timeout.connect(check)
        poll.start()
        loop.exec()
        poll.stop()
        if not condition():
            raise TimeoutError("the app did not get there in time")

    finished: list[FinishedRun] = []
    failures: list[str] = []

    def on_finished(_tag: RunTag, outcome: FinishedRun) -> None:
        finished.append(outcome)

    window.inference.run_finished.connect(on_finished)
    window.inference.run_failed.connect(lambda _tag, message: failures.append(message))
    pipeline_done: list[tuple[float, int, int]] = []  # usage when the "done" progress arrived

    def on_progress(_tag: RunTag, fraction: float, _text: str) -> None:
        if fraction >= 1.0 and not pipeline_done:
            pipeline_done.append(_usage())

    window.inference.progress_changed.connect(on_progress)
    window.open_path(folder)
    wait_until(lambda: window.case is not None and window.run_action.isEnabled())

    gap_clock = QElapsedTimer()
    worst_gap_ms = [0]

    def tick() -> None:
        worst_gap_ms[0] = max(worst_gap_ms[0], gap_clock.restart() - GAP_TICK_MS)

    gap_timer = QTimer()
    gap_timer.setInterval(GAP_TICK_MS)
    gap_timer.timeout.connect(tick)

    def run() -> dict[str, Any]:
        finished.clear()
        pipeline_done.clear()
        worst_gap_ms[0] = 0
        gap_clock.start()
        gap_timer.start()
        cpu, switches, faults = _usage()
        gui_cpu = time.thread_time()  # this thread runs the event loop
        started = time.perf_counter()
        window.run_model(card)

        def shown() -> bool:
            case = window.case
            return bool(failures) or (
                bool(finished)
                and case is not None
                and case.current_run is not None
                and case.current_run.run_id == finished[0].run_id
                and window.labels is not None
            )

        wait_until(shown)
        wall = time.perf_counter() - started
        gui_cpu = time.thread_time() - gui_cpu
        cpu_end, switches_end, faults_end = pipeline_done[0] if pipeline_done else _usage()
        gap_timer.stop()
        if failures:
            raise RuntimeError(failures[-1])
        outcome = finished[0]
        return {
            "cpu_s": cpu_end - cpu,
            "gui_cpu_s": gui_cpu,
            "preempted": switches_end - switches,
            "page_faults": faults_end - faults,
            "plan": outcome.result.plan,
            "timings": outcome.result.timings_s,
            "wall_s": wall,
            "elapsed_s": outcome.elapsed_s,
            "worst_gui_gap_ms": worst_gap_ms[0],
            "findings": len(outcome.result.findings),
            "provider": outcome.result.provider.short_name,
        }

    run()
    _reply({"status": READY, "pid": os.getpid(), "session": os.getsid(0)})
    for _command in _commands():
        _reply(run())
    window.close()
    window.database.close()


class Child:
    """One front end in its own process, driven line by line over its stdin/stdout."""

    def __init__(
        self,
        mode: str,
        folder: Path,
        workdir: Path,
        env: dict[str, str] | None = None,
        own_session: bool = False,
    ) -> None:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **(env or {}))
        self.mode = mode
        self.kind = mode.split("-")[0]  # "app-before" is an app
        self.process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                self.kind,
                "--folder",
                str(folder),
                "--workdir",
                str(workdir),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=own_session,
        )

    def _read(self) -> dict[str, Any]:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        for line in stdout:
            if line.startswith("{"):
                reply: dict[str, Any] = json.loads(line)
                return reply
        raise RuntimeError(f"the {self.mode} child ended (exit code {self.process.wait()})")

    def wait_ready(self) -> int:
        """The child's session id, once it has done its warm-up run."""
        reply = self._read()
        if reply.get("status") != READY:
            raise RuntimeError(f"the {self.mode} child said {reply}")
        return int(reply["session"])

    def run(self) -> dict[str, Any]:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write("run\n")
        stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


BUSY_LOOPS = """
import os, sys
for _ in range(int(sys.argv[1]) - 1):
    if os.fork() == 0:
        break
while True:
    pass
"""


class CpuLoad:
    """``count`` busy-loop processes in a session of their own, as another program's would be
    (with the kernel's autogroup scheduling a session is a scheduling group), stopped by their
    process group id."""

    def __init__(self, count: int, own_session: bool = True) -> None:
        self.count = count
        self.own_session = own_session
        self.leader: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CpuLoad:
        if self.count > 0:
            self.leader = subprocess.Popen(
                [sys.executable, "-c", BUSY_LOOPS, str(self.count)],
                # A group of their own (a session leads one), stopped by its id.
                start_new_session=self.own_session,
                process_group=None if self.own_session else 0,
            )
            time.sleep(1.0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.leader is not None:
            os.killpg(self.leader.pid, signal.SIGKILL)
            self.leader.wait()


def phase(children: dict[str, Child], repeats: int) -> dict[str, list[dict[str, Any]]]:
    """Alternate the front ends (which goes first alternates too), ``repeats`` runs each."""
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in children}
    order = list(children)
    for index in range(repeats):
        for mode in order if index % 2 == 0 else order[::-1]:
            kind = children[mode].kind
            result = children[mode].run()
            runs[mode].append(result)
            extra = (
                f", GUI thread CPU {result['gui_cpu_s']:.2f} s,"
                f" worst GUI gap {result['worst_gui_gap_ms']} ms"
                if kind == "app"
                else ""
            )
            print(
                f"    {mode:10}: total {result['timings']['total']:.2f} s"
                f" (model {result['timings']['model']:.2f} s), wall {result['wall_s']:.2f} s,"
                f" CPU {result['cpu_s']:.1f} s, {result['preempted']} preemptions,"
                f" {result['page_faults']} page faults{extra}",
                flush=True,
            )
    return runs


def median(runs: list[dict[str, Any]], key: str) -> float:
    if key in ("wall_s", "elapsed_s", "worst_gui_gap_ms", "cpu_s"):
        return statistics.median(float(r[key]) for r in runs)
    return statistics.median(float(r["timings"][key]) for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--load",
        type=int,
        default=4,
        help="busy-loop processes when loaded (with 2 on 2 cores the app's session of 4 busy "
        "threads gets the 2 cores, the CLI's 1 of them: the same core each; 4 tell them apart)",
    )
    parser.add_argument(
        "--shape", type=int, nargs=3, default=(300, 512, 512), metavar=("Z", "Y", "X")
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--load-session",
        choices=("own", "app"),
        default="app",
        help="own: the load runs in a session of its own (another program's); app: in the "
        "session the app is started in, the CLI in its own (as from a terminal)",
    )
    parser.add_argument(
        "--before",
        action="store_true",
        help="also run the app as it was before issue 17 (same run, for before/after)",
    )
    parser.add_argument("--child", choices=("app", "cli"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "cli":
        cli_child(args.folder, args.workdir)
        return
    if args.child == "app":
        app_child(args.folder, args.workdir)
        return

    from meddiag_desktop.demo.case import write_demo_case

    with tempfile.TemporaryDirectory(prefix="meddiag-app-vs-cli-") as scratch:
        work = Path(scratch)
        clock = time.perf_counter()
        case = write_demo_case(work / "case", SEED, tuple(args.shape), SPACING_XYZ_MM)
        print(
            f"demo phantom {tuple(args.shape)} written in {time.perf_counter() - clock:.0f} s;"
            f" model {MODEL}; {os.cpu_count()} CPUs",
            flush=True,
        )
        modes = {"app": {}, **({"app-before": {BEFORE_ENV: "1"}} if args.before else {}), "cli": {}}
        children = {}
        for mode, env in modes.items():
            (work / mode).mkdir()  # its own settings and case database
            # --load-session app: the load shares the session the app starts in (a desktop
            # session), the CLI has one of its own (a terminal).
            terminal = mode == "cli" and args.load_session == "app"
            children[mode] = Child(mode, case.dicom_folder, work / mode, env, terminal)
        figures: dict[str, Any] = {}
        try:
            sessions = {mode: child.wait_ready() for mode, child in children.items()}
            ours = os.getsid(0)
            print(
                "  sessions: "
                + ", ".join(
                    f"{m} {'the bench' if s == ours else 'own'}" for m, s in sessions.items()
                )
                + f"; load: {'own' if args.load_session == 'own' else 'the bench'}",
                flush=True,
            )
            for name, load in (("quiet", 0), ("loaded", args.load)):
                print(f"  {name} ({load} busy-loop processes):", flush=True)
                with CpuLoad(load, own_session=args.load_session == "own"):
                    runs = phase(children, args.repeats)
                figures[name] = summary(runs)
        finally:
            for child in children.values():
                child.close()
    if args.json:
        print(json.dumps(figures, indent=2))
    print("medians            total s  model s  CPU s  app incl. storing s  worst GUI gap ms")
    for name, modes in figures.items():
        for mode, row in modes.items():
            app_only = (
                f" {row['elapsed_s']:14.2f} {row['worst_gui_gap_ms']:14.0f}"
                if "elapsed_s" in row
                else ""
            )
            print(
                f"  {name:7} {mode:10} {row['total']:6.2f} {row['model']:8.2f}"
                f" {row['cpu_s']:6.1f}{app_only}"
            )
    for name, modes in figures.items():
        for mode, row in modes.items():
            if mode != "cli":
                print(
                    f"  {name} {mode}/cli: paired runs' median {row['paired_ratio']:.2f},"
                    f" CPU seconds {row['cpu_ratio']:.2f}"
                )
    for name in figures:
        if "app-before" in figures[name]:
            print(f"app-before/cli {name}: {figures[name]['app-before']['ratio']:.2f}")
    for name in figures:
        print(f"app/cli {name}: {figures[name]['app']['ratio']:.2f}")


def summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Medians per front end; each app's ratios to the CLI (of medians, and of paired runs)."""
    keys = ("total", "model", "wall_s", "cpu_s")
    table: dict[str, dict[str, float]] = {}
    for mode, results in runs.items():
        row = {key: round(median(results, key), 2) for key in keys}
        if mode != "cli":
            row["elapsed_s"] = round(median(results, "elapsed_s"), 2)
            row["worst_gui_gap_ms"] = median(results, "worst_gui_gap_ms")
            row["ratio"] = round(row["total"] / median(runs["cli"], "total"), 2)
            pairs = [
                a["timings"]["total"] / c["timings"]["total"]
                for a, c in zip(results, runs["cli"], strict=True)
            ]
            row["paired_ratio"] = round(statistics.median(pairs), 2)
            row["cpu_ratio"] = round(row["cpu_s"] / median(runs["cli"], "cpu_s"), 2)
        table[mode] = row
    return table


if __name__ == "__main__":
    main()
