"""Search/replace edits: how a model answers a small step without re-typing the whole script.

A reply holds blocks of the form

    <<<<<<< SEARCH
    lines of the script, copied
    =======
    the lines that replace them
    >>>>>>> REPLACE

Each SEARCH must match exactly one place of the script (exactly, or else line by line with trailing spaces
ignored); blocks apply in order. Anything else is an `EditError`, and the caller asks for the whole script.
"""

from __future__ import annotations

import re

BLOCK = re.compile(r"^[ \t]*<{5,9} ?SEARCH[^\n]*\n(.*?)^[ \t]*={5,9}[ \t]*\n(.*?)^[ \t]*>{5,9} ?REPLACE[^\n]*$",
                   re.MULTILINE | re.DOTALL)
MARKERS = re.compile(r"^[ \t]*(<{5,9} ?SEARCH|>{5,9} ?REPLACE)", re.MULTILINE)


class EditError(ValueError):
    """The edits cannot be applied; the message says which block and why (it is shown to the model)."""


def parse_edits(text: str) -> list[tuple[str, str]]:
    """The (search, replace) pairs of a reply, in order; [] when it holds no block. A reply whose markers do not
    pair up (a block cut off by the token limit) is an EditError."""
    blocks = [(_unfenced(search), _unfenced(replace)) for search, replace in BLOCK.findall(text or "")]
    if len(MARKERS.findall(text or "")) != 2 * len(blocks):
        raise EditError("an edit block is incomplete (its SEARCH, ======= and REPLACE lines do not pair up)")
    return blocks


def _unfenced(part: str) -> str:
    """A block's side without ``` lines around it (models fence each side as code)."""
    lines = part.split("\n")
    if lines and lines[0].lstrip().startswith("```"):
        lines = lines[1:]
    if len(lines) >= 2 and lines[-1] == "" and lines[-2].strip() == "```":
        lines = [*lines[:-2], ""]
    return "\n".join(lines)


def _loose(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").split("\n")]


def _apply_one(code: str, search: str, replace: str, n: int) -> str:
    if not search.strip():
        raise EditError(f"block {n} has an empty SEARCH")
    if code.count(search) == 1:
        return code.replace(search, replace, 1)
    if code.count(search) > 1:
        raise EditError(f"block {n}'s SEARCH matches {code.count(search)} places: copy more lines to make it unique")
    # Line by line, trailing spaces ignored: models drop a trailing space or the final newline.
    lines, want = code.split("\n"), _loose(search)
    starts = [i for i in range(len(lines) - len(want) + 1)
              if [line.rstrip() for line in lines[i:i + len(want)]] == want]
    if len(starts) != 1:
        first = want[0].strip()[:80]
        raise EditError(f"block {n}'s SEARCH matches {len(starts) or 'no'} places of the script"
                        + (f" (its first line: {first!r})" if not starts else ""))
    i = starts[0]
    return "\n".join([*lines[:i], *replace.strip("\n").split("\n"), *lines[i + len(want):]])


def apply_edits(code: str, edits: list[tuple[str, str]]) -> str:
    """`code` with every edit applied in order; EditError when one does not match exactly one place."""
    if not edits:
        raise EditError("the reply holds no edit block")
    edited = code
    for n, (search, replace) in enumerate(edits, 1):
        edited = _apply_one(edited, search, replace, n)
    if edited == code:
        raise EditError("the edits change nothing: each REPLACE repeats its SEARCH")
    return edited
