"""Fuzz test (issue 16): a few hundred damaged copies of the shared real scans, from a fixed seed,
loaded the way ``meddiag scan`` + ``meddiag convert`` load them.

For every mutant: no crash (each load runs in a worker process, restarted when it dies), no hang
(a per-mutant timeout), no traceback (only the scan layer's named ScanError, whose message is one
line), a loadable listing with finite geometry, and never a load that succeeds without a new
warning yet gives a volume different from the undamaged one. Mutants whose damage no reader can
detect (see ``fuzz_mutations``: DICOM and raw NIfTI/MHA/NRRD have no checksum) are held only to
the first four and counted apart. Counts per class and outcome go to
``test-artifacts/fuzz_summary.json``.

Environment: ``MEDDIAG_FUZZ_SEED`` (default 16) and ``MEDDIAG_FUZZ_SCALE`` (mutants per base,
relative; default 1) for longer local runs.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict, deque
from pathlib import Path

import pytest
from fuzz_mutations import (
    BASES,
    EXPECTED,
    STRICT,
    UNDETECTABLE,
    Mutant,
    materialize,
    plan,
    write_pristine,
)

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(600)]

SEED = int(os.environ.get("MEDDIAG_FUZZ_SEED", "16"))
SCALE = float(os.environ.get("MEDDIAG_FUZZ_SCALE", "1"))
# The largest mutant here is 3 MB; the slowest undamaged load (5 JPEG 2000 slices) takes 0.2 s.
# SimpleITK has been seen to take 39 s on one corrupt file (PITFALLS.md): that is a hang here.
PER_MUTANT_TIMEOUT_S = 20.0
WORKER_START_TIMEOUT_S = 90.0
WORKERS = max(1, min(2, os.cpu_count() or 1))
WORKER_SCRIPT = Path(__file__).with_name("fuzz_worker.py")
REPO_ROOT = Path(__file__).resolve().parents[2]

# Outcomes that pass; every other outcome is a failure.
REFUSED = "refused_named_error"
WARNED = "loaded_with_warning"
IDENTICAL = "loaded_identical"
AS_EXPECTED = "loaded_as_expected"
UNDETECTABLE_OUTCOME = "undetectable_by_design"
PASSING = {REFUSED, WARNED, IDENTICAL, AS_EXPECTED, UNDETECTABLE_OUTCOME}


class _Worker:
    """One worker process and the request it is working on."""

    def __init__(self, number: int, log: Path) -> None:
        self.number = number
        self.log = log
        self.restarts = -1
        self.proc: subprocess.Popen[bytes] | None = None
        self.buffer = b""
        self.job: tuple[Mutant, Path, float] | None = None
        self.log_mark = 0
        self.start()

    def start(self) -> None:
        self.restarts += 1
        env = dict(os.environ, ORT_DISABLE_TELEMETRY="1", PYTHONFAULTHANDLER="1")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(WORKER_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=REPO_ROOT,
                env=env,
            )
        self.buffer = b""
        ready = self.read_line(time.monotonic() + WORKER_START_TIMEOUT_S)
        if ready != {"ready": True}:
            self.stop()
            raise RuntimeError(f"fuzz worker did not start: {ready}; stderr: {self.stderr_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    @property
    def fd(self) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        return self.proc.stdout.fileno()

    def send(self, request: dict, mutant: Mutant, folder: Path) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.log_mark = self.log.stat().st_size if self.log.exists() else 0
        self.job = (mutant, folder, time.monotonic())
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()

    def poll_line(self) -> dict | str | None:
        """A complete answer, None while none is complete, or "eof" when the worker died."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            return "eof"
        self.buffer += chunk
        if b"\n" not in self.buffer:
            return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def read_line(self, deadline: float) -> dict | str:
        with selectors.DefaultSelector() as selector:
            selector.register(self.fd, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    got = self.poll_line()
                    if got is not None:
                        return got
        return "timeout"

    def stderr_tail(self, since: int = 0) -> str:
        """The worker's last words: faulthandler's fatal-error line and the innermost frames
        of the thread that died (the list of loaded extension modules is left out)."""
        if not self.log.exists():
            return ""
        with open(self.log, "rb") as handle:
            handle.seek(since)
            lines = [line.strip() for line in handle.read().decode(errors="replace").splitlines()]
        fatal = [line for line in lines if line.startswith("Fatal Python error")]
        frames = [line for line in lines if line.startswith("File ")]
        picked = fatal[-1:] + frames[:4] if fatal else [line for line in lines if line][-4:]
        return " | ".join(picked)[-800:]


def _run_all(
    mutants: list[Mutant],
    pristine: dict[str, Path],
    scratch: Path,
    logs: Path,
    timeout_s: float = PER_MUTANT_TIMEOUT_S,
    self_tests: dict[str, str] | None = None,
) -> tuple[dict[str, dict], int]:
    """Every mutant through the workers: its answer, or a crash/hang record.

    ``self_tests`` (mutant id -> "crash" | "hang") makes the worker misbehave on purpose, to
    check that this harness sees crashes and hangs and carries on after them."""
    workers = [_Worker(i, logs / f"fuzz_worker_{i}.log") for i in range(WORKERS)]
    pending = deque(mutants)
    answers: dict[str, dict] = {}
    selector = selectors.DefaultSelector()
    for worker in workers:
        selector.register(worker.fd, selectors.EVENT_READ, worker)

    def finish(worker: _Worker, answer: dict) -> None:
        assert worker.job is not None
        mutant, folder, started = worker.job
        answer["seconds"] = round(time.monotonic() - started, 3)
        answers[mutant.ident] = answer
        shutil.rmtree(folder, ignore_errors=True)
        worker.job = None

    def restart(worker: _Worker) -> None:
        selector.unregister(worker.fd)
        worker.stop()
        worker.start()
        selector.register(worker.fd, selectors.EVENT_READ, worker)

    try:
        while pending or any(w.job for w in workers):
            for worker in workers:
                if worker.job is None and pending:
                    mutant = pending.popleft()
                    folder = scratch / mutant.ident
                    path = materialize(mutant, pristine[mutant.base], folder)
                    reference = pristine[mutant.base]
                    request = {
                        "id": mutant.ident,
                        "path": str(path),
                        "reference": str(reference),
                        "expect": mutant.expect,
                        "strip": [
                            str(folder),
                            str(reference if reference.is_dir() else reference.parent),
                        ],
                        "out": str(scratch / f"{mutant.ident}.out.nii.gz"),
                        "self_test": (self_tests or {}).get(mutant.ident, ""),
                    }
                    worker.send(request, mutant, folder)
            deadlines = [w.job[2] + timeout_s for w in workers if w.job]
            wait = max(0.0, min(deadlines) - time.monotonic()) if deadlines else 0.0
            for key, _events in selector.select(timeout=wait):
                worker = key.data
                got = worker.poll_line()
                if got == "eof":
                    assert worker.proc is not None
                    code = worker.proc.wait()
                    tail = worker.stderr_tail(worker.log_mark)
                    died = signal.Signals(-code).name if code < 0 else f"exit code {code}"
                    finish(worker, {"outcome": "crash", "message": f"worker died ({died}): {tail}"})
                    restart(worker)
                elif got is not None:
                    finish(worker, got)
            now = time.monotonic()
            for worker in workers:
                if worker.job and now - worker.job[2] > timeout_s:
                    finish(
                        worker,
                        {"outcome": "hang", "message": f"no answer in {timeout_s:g} s"},
                    )
                    restart(worker)
    finally:
        for worker in workers:
            worker.stop()
        selector.close()
    return answers, sum(w.restarts for w in workers)


def judge(mutant: Mutant, answer: dict) -> tuple[str, str]:
    """(outcome, what happened) for one mutant under its oracle."""
    outcome = answer.get("outcome")
    message = answer.get("message", "")
    if outcome in ("crash", "hang", "reference_failed"):
        return outcome, message
    if outcome == "error":
        last = (answer.get("traceback") or "").strip().splitlines()
        where = next(
            (line.strip() for line in reversed(last) if line.strip().startswith("File ")), ""
        )
        kind = "unnamed_error" if answer.get("cli_one_line") else "traceback"
        return kind, f"{answer.get('error_type')}: {message} [{where}]"
    listing = answer.get("listing_problems") or []
    if outcome == "refused":
        if "\n" in message:
            return "multi_line_message", message
        if not answer.get("names_the_file", True):
            return "message_without_file", message
        if listing:
            return "scan_listing", "; ".join(listing) + f" (then refused: {message})"
        return REFUSED, message
    invalid = answer.get("invalid_geometry") or []
    if invalid:
        return "invalid_geometry", "loaded with " + ", ".join(invalid)
    if listing:
        return "scan_listing", "; ".join(listing)
    differences = answer.get("differences") or []
    warnings = answer.get("new_warnings") or []
    if mutant.oracle == UNDETECTABLE:
        return UNDETECTABLE_OUTCOME, "; ".join(differences) or "identical"
    if warnings:
        return WARNED, " | ".join(warnings)
    if differences:
        return "silently_different", "loaded without a warning: " + "; ".join(differences)
    return (AS_EXPECTED if mutant.oracle == EXPECTED else IDENTICAL), ""


def _undetectable_detail(answer: dict) -> str:
    if answer.get("outcome") == "refused":
        return "refused"
    if answer.get("new_warnings"):
        return "loaded_with_warning"
    return "loaded_different_without_warning" if answer.get("differences") else "loaded_identical"


def summarize(
    mutants: list[Mutant], answers: dict[str, dict], runtime: float, restarts: int
) -> dict:
    outcomes: Counter[str] = Counter()
    by_class: dict[str, Counter[str]] = defaultdict(Counter)
    oracle_of: dict[str, str] = {}
    undetectable: Counter[str] = Counter()
    listed_then_refused: Counter[str] = Counter()
    failures = []
    examples: dict[str, dict[str, str]] = {}
    slowest = max(answers.values(), key=lambda a: a.get("seconds", 0), default={})
    for mutant in mutants:
        answer = answers[mutant.ident]
        outcome, detail = judge(mutant, answer)
        outcomes[outcome] += 1
        by_class[mutant.kind][outcome] += 1
        oracle_of[mutant.kind] = mutant.oracle
        examples.setdefault(mutant.kind, {}).setdefault(
            outcome, f"{mutant.ident}: {mutant.description} => {detail[:300] or 'as it should'}"
        )
        if outcome == UNDETECTABLE_OUTCOME:
            undetectable[_undetectable_detail(answer)] += 1
        if answer.get("outcome") == "refused" and answer.get("listed_loadable"):
            listed_then_refused[mutant.kind] += 1
        if outcome not in PASSING:
            failures.append(
                {
                    "mutant": mutant.ident,
                    "class": mutant.kind,
                    "mutation": mutant.description,
                    "outcome": outcome,
                    "what_happened": detail[:600],
                }
            )
    return {
        "seed": SEED,
        "mutants": len(mutants),
        "runtime_s": round(runtime, 1),
        "workers": WORKERS,
        "worker_restarts": restarts,
        "slowest_mutant_s": slowest.get("seconds"),
        "outcomes": dict(outcomes.most_common()),
        "undetectable_by_design": dict(undetectable.most_common()),
        "by_oracle": dict(Counter(m.oracle for m in mutants)),
        "by_class": {
            kind: {"oracle": oracle_of[kind], **dict(counts.most_common())}
            for kind, counts in sorted(by_class.items())
        },
        "listed_loadable_then_refused_by_load": dict(listed_then_refused),
        "failures": failures,
        "examples": dict(sorted(examples.items())),
    }


def _report(summary: dict, path: Path) -> str:
    lines = [
        f"fuzz: {summary['mutants']} mutants (seed {summary['seed']}) in {summary['runtime_s']} s, "
        f"{summary['workers']} workers, {summary['worker_restarts']} restarts; summary in {path}",
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items()),
        "undetectable by design: "
        + ", ".join(f"{k} {v}" for k, v in summary["undetectable_by_design"].items()),
    ]
    for kind, counts in summary["by_class"].items():
        rest = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "oracle")
        lines.append(f"  {kind} [{counts['oracle']}]: {rest}")
    examples: dict[tuple[str, str], dict] = {}
    for failure in summary["failures"]:
        examples.setdefault((failure["class"], failure["outcome"]), failure)
    if examples:
        lines.append(
            f"{len(summary['failures'])} failing mutants; one example per class and outcome:"
        )
        for (kind, outcome), failure in sorted(examples.items()):
            lines.append(
                f"  {kind} -> {outcome}: {failure['mutant']}: {failure['mutation']} => "
                f"{failure['what_happened'][:300]}"
            )
    return "\n".join(lines)


def test_damaged_scans_give_an_error_or_a_warning_never_a_silently_wrong_volume(
    sample_data: Path, tmp_path: Path, artifacts_dir: Path
) -> None:
    bases = {
        base.name: (base, write_pristine(base, sample_data, tmp_path / "pristine" / base.name))
        for base in BASES
    }
    mutants = plan(bases, SEED, SCALE)
    assert len({m.ident for m in mutants}) == len(mutants)
    assert {STRICT, EXPECTED, UNDETECTABLE} <= {m.oracle for m in mutants}
    scratch = tmp_path / "mutants"
    scratch.mkdir()
    started = time.monotonic()
    answers, restarts = _run_all(
        mutants, {name: path for name, (_base, path) in bases.items()}, scratch, tmp_path
    )
    summary = summarize(mutants, answers, time.monotonic() - started, restarts)
    out = artifacts_dir / "fuzz_summary.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    report = _report(summary, out)
    print(report)
    reference_failures = [f for f in summary["failures"] if f["outcome"] == "reference_failed"]
    assert not reference_failures, f"an undamaged base does not load: {reference_failures[0]}"
    assert not summary["failures"], report


def _judge_cases() -> list[tuple[str, dict, str]]:
    """Hand-made answers for the oracle itself, which decides every count above."""
    base = {"outcome": "loaded", "new_warnings": [], "differences": [], "invalid_geometry": []}
    return [
        (STRICT, {**base}, IDENTICAL),
        (STRICT, {**base, "differences": ["3 of 10 voxels differ"]}, "silently_different"),
        (STRICT, {**base, "differences": ["x"], "new_warnings": ["slice left out"]}, WARNED),
        (UNDETECTABLE, {**base, "differences": ["3 voxels differ"]}, UNDETECTABLE_OUTCOME),
        (UNDETECTABLE, {**base, "invalid_geometry": ["spacing (nan, 1, 1)"]}, "invalid_geometry"),
        (EXPECTED, {**base}, AS_EXPECTED),
        (STRICT, {"outcome": "refused", "message": "a.dcm: is truncated"}, REFUSED),
        (STRICT, {"outcome": "refused", "message": "a\nb"}, "multi_line_message"),
        (
            STRICT,
            {"outcome": "refused", "message": ".: 32-bit pixels", "names_the_file": False},
            "message_without_file",
        ),
        (STRICT, {"outcome": "error", "error_type": "TypeError", "message": "x"}, "traceback"),
        (
            STRICT,
            {"outcome": "error", "error_type": "ValueError", "message": "x", "cli_one_line": True},
            "unnamed_error",
        ),
        (
            STRICT,
            {**base, "listing_problems": ["k: listed loadable with spacing [nan]"]},
            "scan_listing",
        ),
        (STRICT, {"outcome": "crash", "message": "worker exit -11"}, "crash"),
        (STRICT, {"outcome": "hang", "message": "no answer"}, "hang"),
    ]


@pytest.mark.parametrize(("oracle", "answer", "outcome"), _judge_cases())
def test_the_oracle_judges_each_answer(oracle: str, answer: dict, outcome: str) -> None:
    mutant = Mutant("000-x-y", "x", "x.y", oracle, "", lambda: {})
    assert judge(mutant, answer)[0] == outcome


def test_the_harness_sees_a_crash_and_a_hang_and_carries_on(
    sample_data: Path, tmp_path: Path
) -> None:
    """A worker that aborts or stops answering is a failure naming the mutant, and the mutants
    after it still run (in a restarted worker)."""
    (base,) = [b for b in BASES if b.name == "ct5n"]
    pristine = write_pristine(base, sample_data, tmp_path / "pristine")
    mutants = [
        Mutant(f"00{i}-ct5n-{what}", "ct5n", "self_test", STRICT, what, lambda: {})
        for i, what in enumerate(["crash", "hang", "undamaged"])
    ]
    scratch = tmp_path / "mutants"
    scratch.mkdir()
    answers, restarts = _run_all(
        mutants,
        {"ct5n": pristine},
        scratch,
        tmp_path,
        timeout_s=5.0,
        self_tests={mutants[0].ident: "crash", mutants[1].ident: "hang"},
    )
    outcomes = [judge(m, answers[m.ident])[0] for m in mutants]
    if WORKERS == 1:
        assert outcomes == ["crash", "hang", IDENTICAL]
    else:  # the second worker may take the hang while the first restarts
        assert sorted(outcomes) == sorted(["crash", "hang", IDENTICAL])
    assert "Fatal Python error" in answers[mutants[0].ident]["message"]
    assert restarts == 2
