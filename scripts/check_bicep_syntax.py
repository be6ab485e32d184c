"""Syntax check for Bicep files with tree-sitter-bicep (no Bicep compiler needed).

Usage: python scripts/check_bicep_syntax.py [FILE_OR_DIR ...]   (default: infra/)

Every ``*.bicep`` file found is parsed; a file fails when the tree has an ERROR or MISSING node.
Exit status: 0 when every file parses cleanly, 1 on any syntax error, 2 when no file was found.
This catches typos (unbalanced braces, stray tokens, bad decorators); it does not type-check
resource properties or API versions — only the real Bicep compiler does that.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

_LANGUAGE = Language(tree_sitter_bicep.language())


def bicep_files(targets: list[Path]) -> list[Path]:
    files: set[Path] = set()
    for target in targets:
        if target.is_dir():
            files.update(p for p in target.rglob("*.bicep") if p.is_file())
        elif target.is_file():
            files.add(target)
        else:
            raise FileNotFoundError(f"{target} does not exist")
    return sorted(files)


def _problems(node: Node) -> Iterator[Node]:
    if node.is_error or node.is_missing:
        yield node
        if node.is_missing:
            return
    for child in node.children:
        if child.has_error or child.is_missing or child.is_error:
            yield from _problems(child)


def check_text(source: bytes) -> list[str]:
    """Problems in one Bicep source, as 'line:col: message' strings (1-based)."""
    tree = Parser(_LANGUAGE).parse(source)
    problems: list[str] = []
    for node in _problems(tree.root_node):
        line, col = node.start_point.row + 1, node.start_point.column + 1
        if node.is_missing:
            problems.append(f"{line}:{col}: missing {node.type!r}")
        else:
            snippet = source[node.start_byte : node.end_byte].decode("utf-8", "replace")
            snippet = snippet.strip().splitlines()[0][:60] if snippet.strip() else ""
            problems.append(f"{line}:{col}: syntax error near {snippet!r}")
    if tree.root_node.has_error and not problems:  # defensive: never pass a tree flagged as broken
        problems.append("1:1: syntax error")
    return problems


def main(argv: list[str]) -> int:
    targets = [Path(a) for a in argv] or [Path(__file__).resolve().parent.parent / "infra"]
    try:
        files = bicep_files(targets)
    except FileNotFoundError as exc:
        print(f"check_bicep_syntax: {exc}", file=sys.stderr)
        return 2
    if not files:
        print("check_bicep_syntax: no .bicep files found", file=sys.stderr)
        return 2
    failed = 0
    for path in files:
        problems = check_text(path.read_bytes())
        if problems:
            failed += 1
            for problem in problems:
                print(f"{path}:{problem}", file=sys.stderr)
    print(f"tree-sitter-bicep: {len(files) - failed}/{len(files)} files parsed without syntax errors")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
