"""Route matching as API Gateway HTTP APIs do it: the most specific route wins."""

from __future__ import annotations

from dataclasses import dataclass

from pilot_dev.runtime.template import Route


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    path_parameters: dict[str, str]

    @property
    def route_key(self) -> str:
        return f"{self.route.method} {self.route.path}"


class RouteTable:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._compiled = [(route, route.path.strip("/").split("/")) for route in routes]
        # API Gateway's precedence, worked out once: the first match in this order wins
        # (sorted() is stable, so equal ranks keep the template's order).
        self._ordered = sorted(self._compiled, key=lambda rp: _rank(*rp), reverse=True)
        # A route without variables outranks every other route its path matches.
        self._literal = {(route.method, route.path.rstrip("/") or "/"): route
                         for route, pattern in self._compiled
                         if not any(p.startswith("{") for p in pattern)}

    def match(self, method: str, path: str) -> RouteMatch | None:
        key = path.rstrip("/") or "/"
        literal = self._literal.get((method, key)) or self._literal.get(("ANY", key))
        if literal is not None:
            return RouteMatch(literal, {})
        segments = path.strip("/").split("/")
        for route, pattern in self._ordered:
            if route.method not in (method, "ANY"):
                continue
            params = _match_segments(pattern, segments)
            if params is not None:
                return RouteMatch(route, params)
        return None

    def allowed_methods(self, path: str) -> list[str]:
        segments = path.strip("/").split("/")
        return sorted(
            {r.method for r, p in self._compiled if _match_segments(p, segments) is not None}
        )


def _match_segments(pattern: list[str], segments: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for i, part in enumerate(pattern):
        if part.startswith("{") and part.endswith("+}"):
            rest = segments[i:]
            if not rest or rest == [""]:
                return None
            params[part[1:-2]] = "/".join(rest)
            return params
        if i >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            if not segments[i]:
                return None
            params[part[1:-1]] = segments[i]
        elif part != segments[i]:
            return None
    return params if len(segments) == len(pattern) else None


def _rank(route: Route, pattern: list[str]) -> tuple[int, int, int, int]:
    # no greedy variable > more literal segments > longer pattern > exact method
    greedy = any(p.endswith("+}") for p in pattern)
    literals = sum(1 for p in pattern if not p.startswith("{"))
    return (0 if greedy else 1, literals, len(pattern), 0 if route.method == "ANY" else 1)
