"""The usual tasks, one name each: `nox -l` lists them, `nox -s lint types test` runs some.

Every session runs in the environment nox itself runs from (the project's `.venv` after
`pip install -e '.[dev]'`): nothing is downloaded, so the tasks work offline and are
exactly what `.ci/run` checks. Arguments after `--` go to the tool, e.g.
`nox -s test -- tests/unit -x`.
"""

from __future__ import annotations

import sys

import nox

nox.options.sessions = ["lint", "types", "test"]
nox.options.default_venv_backend = "none"

#: The interpreter nox runs on (the project's venv): its tools are run as modules, so
#: they are found without the venv on PATH.
PYTHON = sys.executable
#: The embedded PostgreSQL is the default; HODEI_TEST_DATABASE_URL points elsewhere.
PYTEST = [PYTHON, "-m", "pytest"]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff format --check, then ruff check, over the whole tree."""
    session.run(PYTHON, "-m", "ruff", "format", "--check", ".")
    session.run(PYTHON, "-m", "ruff", "check", ".", *session.posargs)


@nox.session
def types(session: nox.Session) -> None:
    """mypy over hodei/, harness/, tests/, features/ and benchmarks/ (pyproject.toml)."""
    session.run(PYTHON, "-m", "mypy", *session.posargs)


@nox.session
def test(session: nox.Session) -> None:
    """The unit and integration tests (tests/), on a real PostgreSQL."""
    session.run(*PYTEST, *(session.posargs or ["tests"]))


@nox.session
def e2e(session: nox.Session) -> None:
    """The BDD suite (pytest features/) against a real platform, with its report.

    `nox -s e2e -- --launcher live --server HOST:PORT` attaches to a running deployment.
    """
    session.run(*PYTEST, "features", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The platform benchmark (--quick unless arguments are given).

    Figures worth keeping go in benchmarks/RESULTS.md.
    """
    session.run(PYTHON, "benchmarks/bench_platform.py", *(session.posargs or ["--quick"]))


@nox.session
def protos(session: nox.Session) -> None:
    """Regenerate the gRPC stubs and check they match the committed ones.

    grpcio-tools is pinned in [dev] so that they regenerate byte for byte.
    """
    session.run("bash", "scripts/gen_protos.sh", env={"PYTHON": PYTHON})
    session.run(*PYTEST, "tests/unit/api/test_protos_regenerate.py", "-q")
