#!/usr/bin/env python3
r"""Reads CEF lines with an independent parser and compares them, field for
field, with the values they were written from.

Usage: cef_check.py LINES EXPECTED.json

LINES holds one CEF line per line (UTF-8). EXPECTED.json is a list with one
object per line: {"version", "vendor", "product", "device_version",
"event_class_id", "name", "severity", "extension": {key: value}}, the values
unescaped. Exits 0 when every line matches, 1 when one does not, and 77 when
the parser is not installed (the caller decides whether that is a skip).

The parser is `cefp` from PyPI (pip install 'cefp==0.0.2'): a character-level
tokenizer that undoes every escape of the CEF standard: `\\` and `\|` in the
header; `\\`, `\=`, `\n` and `\r` in the extension, with values that hold
spaces. `pycef`, the better known package, was tried first and rejected: its
regular expressions leave `\=` and `\\` escaped in the values it returns and
fail on a header field that holds an escaped backslash, so it cannot check
escaping at all. `pourover` has the same regular expressions and `cefevent`
only writes CEF; no better-kept CEF parser is on PyPI.

cefp is lenient in one way: it reads a backslash before any character as that
character, so it would accept an escape the standard does not define (`\|`
in the extension, say). `strict_escapes` below refuses those, so a line must
be both read back exactly by cefp and escaped only as the standard allows.
"""

import json
import sys

try:
    import cefp
except ImportError:
    print("cef_check: the cefp package is not installed (pip install 'cefp==0.0.2')")
    sys.exit(77)

HEADER_FIELDS = 7
HEADER_ESCAPES = {"\\", "|"}
EXTENSION_ESCAPES = {"\\", "=", "n", "r"}


def strict_escapes(line):
    """The escapes in `line` the CEF standard does not define, as messages."""
    problems = []
    pipes = 0
    i = 0
    while i < len(line):
        c = line[i]
        in_header = pipes < HEADER_FIELDS
        if c == "\\":
            nxt = line[i + 1] if i + 1 < len(line) else ""
            allowed = HEADER_ESCAPES if in_header else EXTENSION_ESCAPES
            if nxt not in allowed:
                part = "header" if in_header else "extension"
                problems.append(f"undefined escape \\{nxt!r} in the {part} at {i}")
            i += 2
            continue
        if c == "|" and in_header:
            pipes += 1
        i += 1
    if pipes < HEADER_FIELDS:
        problems.append(f"only {pipes} unescaped pipes: the header is incomplete")
    return problems


def as_expected(parsed):
    """cefp's result in the shape of an expected object."""
    device = parsed["device"]
    return {
        "version": parsed["version"],
        "vendor": device["vendor"],
        "product": device["product"],
        "device_version": device["version"],
        "event_class_id": device["event_class_id"],
        "name": parsed["name"],
        "severity": parsed["severity"],
        "extension": parsed["extension"],
    }


def differences(got, want):
    out = []
    for field in want:
        if field == "extension":
            continue
        if got.get(field) != want[field]:
            out.append(f"{field}: got {got.get(field)!r}, want {want[field]!r}")
    got_ext, want_ext = got.get("extension", {}), want["extension"]
    for key in sorted(set(got_ext) | set(want_ext)):
        if got_ext.get(key) != want_ext.get(key):
            out.append(f"extension {key}: got {got_ext.get(key)!r}, want {want_ext.get(key)!r}")
    return out


def check(lines, expected):
    failures = 0
    for n, (line, want) in enumerate(zip(lines, expected), start=1):
        problems = strict_escapes(line)
        try:
            problems += differences(as_expected(cefp.parse(line)), want)
        except ValueError as e:
            problems.append(f"cefp could not parse it: {e}")
        if problems:
            failures += 1
            print(f"line {n}: {line}")
            for p in problems:
                print(f"  {p}")
    return failures


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    with open(sys.argv[1], encoding="utf-8", newline="\n") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    with open(sys.argv[2], encoding="utf-8") as f:
        expected = json.load(f)
    if len(lines) != len(expected):
        print(f"{len(lines)} lines but {len(expected)} expected: a line break escaped into a line?")
        return 1
    failures = check(lines, expected)
    print(f"cef_check: {len(lines) - failures} of {len(lines)} lines read back exactly by cefp")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
