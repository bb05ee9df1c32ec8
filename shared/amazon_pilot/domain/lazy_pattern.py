"""Regular expressions compiled at their first use rather than at import.

domain.features holds ≈ 110 module-level patterns: compiling them costs ≈ 25 ms of the
cold start of every function that imports the module (through a schema or a service),
while most invocations never read a listing's text. `lazy_re` returns a stand-in
that compiles on the first attribute read and then keeps the compiled pattern's bound
methods and attributes on itself, so later calls cost what the compiled pattern's do.
It is hashable by identity, as compiled patterns used as dict keys need.
"""

from __future__ import annotations

import re
from typing import Any, cast

# What a caller may read from a pattern; copied onto the stand-in at the first read.
_PATTERN_ATTRIBUTES = (
    "search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split",
    "scanner", "pattern", "flags", "groups", "groupindex",
)


class _LazyPattern:
    def __init__(self, pattern: str, flags: int) -> None:
        self._source = (pattern, flags)

    def __getattr__(self, name: str) -> Any:  # only for names not set on the instance yet
        if name == "_source":  # not initialised (copy, pickle): no pattern to compile
            raise AttributeError(name)
        compiled = re.compile(*self._source)
        for attribute in _PATTERN_ATTRIBUTES:
            self.__dict__[attribute] = getattr(compiled, attribute)
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"lazy_re({self._source[0]!r}, {self._source[1]!r})"


def lazy_re(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return cast(re.Pattern[str], _LazyPattern(pattern, flags))
