"""hodei.log_context: the job context's fields on every record logged inside it, in
both formats; and a scan of the server's and worker's log calls about a job."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hodei.log_context import JobContextFilter, current_job, job_context
from hodei.logging_setup import configure_logging

REPO = Path(__file__).resolve().parents[2]
logger = logging.getLogger("hodei.test.log_context")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def record(message: str = "m", **extra: object) -> logging.LogRecord:
    made = logger.makeRecord(logger.name, logging.INFO, __file__, 1, message, (), None)
    for name, value in extra.items():
        setattr(made, name, value)
    JobContextFilter().filter(made)
    return made


def fields(made: logging.LogRecord) -> tuple[object, ...]:
    names = ("job_id", "correlation_id", "attempt", "worker_id")
    return tuple(getattr(made, name, None) for name in names)


def test_a_record_inside_a_job_context_gets_its_fields() -> None:
    assert fields(record()) == (None, None, None, None)
    with job_context("j1", "corr-1", 2, "w1"):
        assert fields(record()) == ("j1", "corr-1", 2, "w1")
        # What a call passes itself wins.
        assert fields(record(worker_id="w2")) == ("j1", "corr-1", 2, "w2")
        # A line about another job takes nothing from this one.
        assert fields(record(job_id="j2"))[:3] == ("j2", None, None)
    assert current_job() is None


def test_an_inner_context_for_the_same_job_keeps_what_it_does_not_say() -> None:
    with job_context("j3", "corr-3"), job_context("j3", attempt=1, worker_id="w"):
        assert fields(record()) == ("j3", "corr-3", 1, "w")
    with job_context("j4", "corr-4"), job_context("j5"):
        assert fields(record()) == ("j5", None, None, None)


def test_a_line_naming_only_the_job_gets_its_last_correlation_id() -> None:
    # A rejected worker message carries the job id and attempt alone on the wire.
    record(job_id="j6", correlation_id="corr-6")
    assert fields(record(job_id="j6", attempt=1)) == ("j6", "corr-6", 1, None)
    assert fields(record(job_id="never-seen")) == ("never-seen", None, None, None)


async def test_a_task_started_inside_keeps_the_context_after_the_block() -> None:
    go = asyncio.Event()

    async def attempt() -> tuple[object, ...]:
        await go.wait()
        return fields(record())

    with job_context("j7", "corr-7", 1):
        task = asyncio.create_task(attempt())
    assert current_job() is None
    go.set()
    assert await task == ("j7", "corr-7", 1, None)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_both_formats_print_the_context(restored_logging: None, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"{fmt}.log"
    configure_logging("INFO", fmt, path)
    with job_context("j8", "corr-8", 3, "w8"):
        logger.info("job started")
    logger.info("not about a job")
    first, second = path.read_text().splitlines()
    if fmt == "json":
        assert json.loads(first) | {"ts": 0} == {
            "ts": 0,
            "level": "INFO",
            "logger": logger.name,
            "message": "job started",
            "job_id": "j8",
            "worker_id": "w8",
            "attempt": 3,
            "correlation_id": "corr-8",
        }
        assert "job_id" not in json.loads(second)
    else:
        assert first.endswith(
            "INFO hodei.test.log_context: job started "
            "job_id=j8 worker_id=w8 attempt=3 correlation_id=corr-8"
        )
        assert second.endswith("not about a job")


# ---- the scan ----------------------------------------------------------------------------

#: A message about one job (not "jobs", "job(s)", "the jobs of a killed worker").
ABOUT_A_JOB = re.compile(r"\b(job|attempt)\b(?!\(s\)|s| guard)|RunJob|CancelJob", re.I)
#: Extras that name the job: a record's or an attempt's fields, or a job_id.
NAMES_THE_JOB = re.compile(r"log_fields|_fields\(|'job_id'")
#: Code that runs only inside a job context (hodei.log_context), though not lexically.
IN_JOB_CONTEXT = {
    # Started by WorkerAgent._on_run inside job_context; the attempt's task keeps it.
    "hodei/worker/launch.py": "*",
    "hodei/worker/runner.py": "*",
    "hodei/worker/agent.py": "_on_run_in_context",
}
#: The openings of lines about no single job, whatever their words (start-up warnings).
NOT_ABOUT_ONE_JOB = ("AUTHENTICATION IS OFF", "FAULT INJECTION")
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


def _log_calls(tree: ast.AST) -> Iterator[tuple[ast.Call, list[ast.AST]]]:
    """Each `logger.<level>(...)` call with the nodes enclosing it, outermost first."""
    stack: list[tuple[ast.AST, list[ast.AST]]] = [(tree, [])]
    while stack:
        node, outer = stack.pop()
        func = getattr(node, "func", None)
        if (
            isinstance(node, ast.Call)
            and isinstance(func, ast.Attribute)
            and func.attr in LEVELS
            and isinstance(func.value, ast.Name)
            and func.value.id == "logger"
        ):
            yield node, outer
        stack.extend((child, [*outer, node]) for child in ast.iter_child_nodes(node))


def _names_the_job(call: ast.Call, outer: list[ast.AST]) -> bool:
    extra = next((k.value for k in call.keywords if k.arg == "extra"), None)
    if extra is None:
        return False
    text = ast.unparse(extra)
    if isinstance(extra, ast.Name):
        # `extra=fields`: what the enclosing function bound to that name.
        function = next(n for n in reversed(outer) if isinstance(n, ast.FunctionDef))
        bound = [
            ast.unparse(n.value)
            for n in ast.walk(function)
            if isinstance(n, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == extra.id for t in n.targets)
        ]
        bound += [a.arg for a in function.args.args if a.arg == extra.id]
        text = " ".join(bound)
    return bool(NAMES_THE_JOB.search(text))


def _in_job_context(module: str, outer: list[ast.AST]) -> bool:
    allowed = IN_JOB_CONTEXT.get(module)
    if allowed == "*":
        return True
    for node in outer:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == allowed:
            return True
        if isinstance(node, ast.With) and any(
            "job_context" in ast.unparse(item.context_expr) for item in node.items
        ):
            return True
    return False


def test_every_log_call_about_a_job_names_it() -> None:
    """A line about a job passes the job's fields or runs inside its job context, so
    that it carries job_id and correlation_id. A message that is not a literal is
    reported too: the scan could not judge it."""
    offenders: list[str] = []
    scanned = 0
    for folder in ("hodei/server", "hodei/worker"):
        for path in sorted((REPO / folder).rglob("*.py")):
            module = str(path.relative_to(REPO))
            for call, outer in _log_calls(ast.parse(path.read_text())):
                first = call.args[0] if call.args else None
                if not isinstance(first, ast.Constant) or not isinstance(first.value, str):
                    offenders.append(f"{module}:{call.lineno}: message is not a literal")
                    continue
                message = first.value
                if not ABOUT_A_JOB.search(message) or message.startswith(NOT_ABOUT_ONE_JOB):
                    continue
                scanned += 1
                if not (_names_the_job(call, outer) or _in_job_context(module, outer)):
                    offenders.append(f"{module}:{call.lineno}: {message!r}")
    assert scanned > 20, "the scan found almost no job lines: has the code moved?"
    assert offenders == [], "log the job's fields or log inside job_context(...):\n" + "\n".join(
        offenders
    )
