"""Random damage to fixture files, for the parsers' property tests."""

from __future__ import annotations

import csv
import io
import random


def _shuffle_columns(text: str, rnd: random.Random) -> str:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    width = max((len(r) for r in rows), default=0)
    perm = list(range(width))
    rnd.shuffle(perm)
    out = []
    for r in rows:
        if len(r) <= 1:  # preamble and blank lines stay as they are
            out.append(r)
            continue
        r = r + [""] * (width - len(r))
        out.append([r[k] for k in perm])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(out)
    return buf.getvalue()


def _junk_cells(text: str, rnd: random.Random, n: int, junk: list[str]) -> str:
    lines = text.split("\n")
    for _ in range(n):
        i = rnd.randrange(len(lines))
        parts = lines[i].split(",")
        parts[rnd.randrange(len(parts))] = rnd.choice(junk)
        lines[i] = ",".join(parts)
    return "\n".join(lines)


def mutate(data: bytes, kind: str, seed: int, junk: list[str]) -> bytes:
    """One random damage of a fixture: truncation, column shuffle, junk cells or random bytes."""
    rnd = random.Random(seed)
    if kind == "truncate":
        return data[: rnd.randrange(len(data) + 1)]
    if kind == "bytes":
        out = bytearray(data)
        for _ in range(rnd.randint(1, 8)):
            out[rnd.randrange(len(out))] = rnd.randrange(256)
        return bytes(out)
    text = data.decode("utf-8")
    if kind == "shuffle":
        return _shuffle_columns(text, rnd).encode("utf-8")
    return _junk_cells(text, rnd, rnd.randint(1, 12), junk).encode("utf-8")
