"""Query parameters that take one value (tham số chỉ nhận một giá trị).

FastAPI reads a scalar query parameter given twice (``?period=2026-10&period=2026-09``) as its
last value, silently: the caller may believe the other one was answered. No FastAPI option
refuses it, so one router dependency does, for every route of the router, from the route's own
declared parameters (nothing to keep in step when a route gains one).
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.routing import APIRoute

from shared.web import ApiError

_MANY = (list, tuple, set, frozenset)


def _takes_many(annotation: Any) -> bool:
    """Whether a declared parameter type collects repeated values (``list[str]``, ``str | list[str]``…)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_takes_many(a) for a in get_args(annotation))
    return annotation in _MANY or origin in _MANY


def _single_valued(route: APIRoute) -> Iterator[str]:
    """The scalar query parameters of the route and of every dependency it uses (at any depth)."""
    pending, seen = [route.dependant], set[int]()
    while pending:
        dependant = pending.pop()
        if id(dependant) in seen:
            continue
        seen.add(id(dependant))
        pending.extend(dependant.dependencies)
        for param in dependant.query_params:
            if not _takes_many(param.field_info.annotation):
                yield param.alias


def repeated_reason(name: str) -> str:
    return f"chỉ được nêu một lần / must be given once: {name!r} was given more than once"


async def single_valued_query(request: Request) -> None:
    """422 naming the first scalar query parameter given more than once (even with equal values)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    query = request.query_params
    for name in _single_valued(route):
        if len(query.getlist(name)) > 1:
            reason = repeated_reason(name)
            raise ApiError(
                422, f"query parameter {name!r} given more than once", details=[{"field": name, "reason": reason}]
            )
