"""Text from outside (a file's values, a blob name, the target's answers) made safe to show to people.

A crafted value or blob name can carry characters that change what a reader sees: ESC starts a
terminal escape sequence, CR/LF/NEL and U+2028/U+2029 start a new line (a forged report or log
line), and the bidi controls (U+202E RIGHT-TO-LEFT OVERRIDE, …) reverse how a file name reads.
:func:`visible` replaces each of them with a visible escape (``\\x1b``, ``\\r``, ``\\u202e``)
wherever such text is written *for people*: error reports, receipts' notes, log lines.

It is never applied to data: the rejected-lines file stays byte-exact, the values sent to the
target are unchanged, and the export file keeps the target's data as it is (see
``shared/export/ledger_format.py``).

Which characters: every character that ``str.isprintable()`` rejects, except the ordinary space
separators (Zs: no-break space, thin space …, which are printable in any sensible font). That is
the control characters (Cc: C0, DEL, C1 with NEL), the format characters (Cf: bidi controls,
zero-width characters, soft hyphen, BOM), the line and paragraph separators (Zl, Zp), surrogates
(Cs: undecodable bytes), private-use and unassigned code points (Co, Cn).
"""

from __future__ import annotations

import re
import unicodedata

_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}

#: First characters of a spreadsheet cell that make it a formula (CSV/formula injection).
FORMULA_STARTS = ("=", "+", "-", "@")


def is_hidden(char: str) -> bool:
    """True for a character that :func:`visible` escapes."""
    return unicodedata.category(char) in _HIDDEN_CATEGORIES


def _escape(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(value: object) -> str:
    """``str(value)`` with every hidden character (see the module docstring) shown as an escape."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case: nothing to do
        return text
    return "".join(_escape(char) if is_hidden(char) else char for char in text)


def has_hidden(text: str) -> bool:
    """True when ``text`` holds a character :func:`visible` would escape."""
    return not text.isprintable() and any(is_hidden(char) for char in text)


def hidden_characters(text: str) -> list[str]:
    """The distinct hidden characters in ``text`` as ``U+202E`` labels, in order of appearance."""
    seen: dict[str, None] = {}
    if not text.isprintable():
        for char in text:
            if is_hidden(char):
                seen.setdefault(f"U+{ord(char):04X}", None)
    return list(seen)


_NON_ASCII = re.compile("[\x7f-\U0010ffff]")


def _json_escape(match: re.Match[str]) -> str:
    char = match.group()
    if not is_hidden(char):
        return char
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_visible(document: str) -> str:
    """A ``json.dumps(..., ensure_ascii=False)`` document with the hidden characters JSON leaves raw
    (DEL, C1 with NEL, bidi controls, U+2028/2029, zero-width, BOM …) written as ``\\uXXXX`` escapes.
    Lossless: parsing the result gives exactly the same strings (``json.dumps`` itself escapes the
    C0 controls). Only valid for JSON text, where such characters can only stand inside strings."""
    if document.isascii() and document.isprintable():
        return document
    return _NON_ASCII.sub(_json_escape, document)


def formula_line(raw: bytes) -> bool:
    """True when a line of a ``;``-separated file has a field a spreadsheet would run as a formula
    (first character ``=``, ``+``, ``-`` or ``@``, after an optional opening quote)."""
    line = raw.removeprefix(b"\xef\xbb\xbf").decode("latin-1")
    for field in line.split(";"):
        field = field.removeprefix('"')
        if field.startswith(FORMULA_STARTS):
            return True
    return False
