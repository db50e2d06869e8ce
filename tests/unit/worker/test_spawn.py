"""What a job's process gets from the worker, on both ways of starting it: posix_spawn
(no working directory) and Popen (with one). Real child processes, no mocks."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from hodei.worker.spawn import Child, make_descriptors_private, spawn


def _finish(child: Child) -> tuple[int, str, str]:
    """Wait for the child and read all of its output (small outputs: the pipes hold it)."""
    code = child.wait()
    out, err = (_read_all(fd) for fd in (child.stdout, child.stderr))
    return code, out, err


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


@pytest.fixture(params=["posix_spawn", "popen"])
def working_dir(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "" if request.param == "posix_spawn" else str(tmp_path)


def test_output_exit_code_and_environment(working_dir: str) -> None:
    code, out, err = _finish(
        spawn(
            ["sh", "-c", 'echo "$GREETING"; echo oops >&2; exit 3'],
            {**os.environ, "GREETING": "hello"},
            working_dir,
        )
    )
    assert (code, out, err) == (3, "hello\n", "oops\n")


def test_only_the_standard_descriptors_are_inherited(working_dir: str) -> None:
    # The worker makes what it was handed close-on-exec at start (the test runner
    # holds inheritable descriptors of its own); Python opens the rest so. ls's own
    # directory handle is 3: anything inherited would push it further.
    make_descriptors_private()
    held = open(__file__)  # noqa: SIM115 - held open across the spawn on purpose
    inheritable = os.dup(held.fileno())
    os.set_inheritable(inheritable, True)
    assert make_descriptors_private() == 1
    try:
        code, out, _ = _finish(spawn(["ls", "/proc/self/fd"], dict(os.environ), working_dir))
    finally:
        held.close()
        os.close(inheritable)
    assert code == 0
    assert set(out.split()) <= {"0", "1", "2", "3"}


def test_stdin_is_dev_null_and_the_child_leads_its_own_session(working_dir: str) -> None:
    script = "import os; print(os.readlink('/proc/self/fd/0')); print(os.getsid(0) == os.getpid())"
    code, out, _ = _finish(spawn([sys.executable, "-c", script], dict(os.environ), working_dir))
    assert (code, out.split()) == (0, ["/dev/null", "True"])


def test_sigpipe_has_its_default_action_in_the_job(working_dir: str) -> None:
    # Python ignores SIGPIPE; a job must not inherit that (`yes | head` would then
    # complain of a broken pipe instead of ending quietly).
    code, out, _ = _finish(
        spawn(["grep", "SigIgn", "/proc/self/status"], dict(os.environ), working_dir)
    )
    ignored = int(out.split()[1], 16)
    assert code == 0
    assert not ignored & (1 << (signal.SIGPIPE - 1))
    code, out, err = _finish(spawn(["sh", "-c", "yes | head -n 1"], dict(os.environ), working_dir))
    assert (code, out, err) == (0, "y\n", "")


def test_the_program_is_found_on_the_jobs_own_path(tmp_path: Path, working_dir: str) -> None:
    tool = tmp_path / "bin" / "only-here"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho found\n")
    tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{tool.parent}:{os.environ['PATH']}"}
    assert _finish(spawn(["only-here"], env, working_dir)) == (0, "found\n", "")
    with pytest.raises(FileNotFoundError):
        spawn(["only-here"], dict(os.environ), working_dir)
    tool.chmod(0o644)  # found, but not executable: refused as Popen refuses it
    with pytest.raises(PermissionError):
        spawn(["only-here"], env, working_dir)


def test_a_file_that_is_not_executable_is_refused(tmp_path: Path, working_dir: str) -> None:
    script = tmp_path / "not-executable"
    script.write_text("echo no\n")
    with pytest.raises(PermissionError):
        spawn([str(script)], dict(os.environ), working_dir)


def test_a_signal_death_is_a_negative_returncode(working_dir: str) -> None:
    code, _, _ = _finish(spawn(["sh", "-c", "kill -TERM $$"], dict(os.environ), working_dir))
    assert code == -signal.SIGTERM
