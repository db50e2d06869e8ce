"""A step's check that explains itself in any report language.

`expect(ok, CODE, "english {x}", x=...)` raises `Mismatch` (an AssertionError, so pytest
reports a failed check) whose text is the English sentence and whose `phrase()` is the
catalogue code (hodei/report/texts `[phrases]`) with its values: the recording keeps it
beside the error, and the Spanish report says it in Spanish.
"""

from __future__ import annotations

from typing import Any


class Mismatch(AssertionError):
    def __init__(self, code: str, text: str, /, **params: Any) -> None:
        self.code = code
        self.params = {
            k: v if isinstance(v, int | float | str) else repr(v) for k, v in params.items()
        }
        super().__init__(text.format(**params))

    def phrase(self) -> dict[str, Any]:
        return {"code": self.code, "params": dict(self.params)}


def expect(ok: object, code: str, text: str, /, **params: Any) -> None:
    # Positional-only: a sentence may well have a {code} of its own (an exit code).
    if not ok:
        raise Mismatch(code, text, **params)
