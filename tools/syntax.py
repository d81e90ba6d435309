"""A script's syntax tree, parsed once per script: a step parses its new script for several checks (is it its base
again, which names it uses unimported, which imports it needs) and its base, the best script so far, at every step."""

from __future__ import annotations

import ast
import functools

CACHED_CHARS = 64 * 1024  # scripts up to this long are kept (a tree costs ~150x its source in memory)


def parse(code: str) -> ast.Module:
    """ast.parse(code), shared by every caller of the same script: read the tree, never change it. Raises what
    ast.parse raises."""
    return _parse(code) if len(code) <= CACHED_CHARS else ast.parse(code)


@functools.lru_cache(maxsize=8)
def _parse(code: str) -> ast.Module:
    return ast.parse(code)
