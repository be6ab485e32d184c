"""Azure Table keys for values from elsewhere (employee codes, Tic-Tac row ids): no ``%`` in a key.

A PartitionKey or RowKey may not hold ``/ \\ # ?`` or control characters, and a key holding ``%``
breaks point operations (``get_entity``, ``upsert_entity``, ``delete_entity``): the service decodes
``%`` in the request URL once more than it should — a documented Azure Tables pitfall. So a value
is escaped with ``!``: the characters ``A-Z a-z 0-9 - _ . ~`` stay as they are, every other
character becomes ``!`` and two upper-case hex digits per UTF-8 byte (``Æ`` → ``!C3!86``, ``/`` →
``!2F``, ``!`` → ``!21``).

Earlier versions escaped with ``urllib.parse.quote`` (``%C3%86``). For every value ``quote`` left
as it was, the new key is the same; a stored key that holds ``%`` is the earlier form and
:func:`decode_key` still reads it (the two forms cannot be confused: an earlier key never holds
``!``, a new one never ``%``). Writers use the new form only; :func:`legacy_key` names the earlier
form, for the readers that look a value up by key.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_ESCAPED = re.compile(r"(?:![0-9A-F]{2})+")


def encode_key(value: str) -> str:
    """``value`` as a table key without ``%`` (reversible: :func:`decode_key`)."""
    if all(char in _SAFE for char in value):
        return value
    return "".join(char if char in _SAFE else "".join(f"!{byte:02X}" for byte in char.encode("utf-8"))
                   for char in value)


def decode_key(key: str) -> str:
    """The value of a key written by :func:`encode_key` — or by earlier versions (``%``-escaped)."""
    if "%" in key:
        return unquote(key)
    return _ESCAPED.sub(lambda found: bytes.fromhex(found.group().replace("!", "")).decode("utf-8", "replace"), key)


def legacy_key(value: str) -> str | None:
    """The key earlier versions wrote for ``value``, when it differs from :func:`encode_key`'s."""
    earlier = quote(value, safe="")
    return earlier if earlier != encode_key(value) else None


__all__ = ["decode_key", "encode_key", "legacy_key"]
