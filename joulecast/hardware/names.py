"""How GPU names are compared: case, spaces and punctuation do not matter, nor a leading brand.

NVML's names for one GPU changed with drivers ("GeForce GTX 1080 Ti" became "NVIDIA GeForce GTX
1080 Ti") and people write them as slugs ("tesla-t4") or short ("T4"). A name's *keys* are its
words joined, once as written and once without leading brand words, so "NVIDIA Tesla T4",
"tesla_t4" and "T4" meet on the key "t4". "Quadro" is not a brand word here: "RTX 6000" alone
names two GPUs (Quadro RTX 6000, RTX 6000 Ada).
"""

from __future__ import annotations

import re

BRAND_WORDS = frozenset({"nvidia", "tesla", "geforce"})
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def words(name: str) -> tuple[str, ...]:
    """Lower-case alphanumeric words of ``name``: 'NVIDIA A100-SXM4-80GB' -> nvidia a100 sxm4 80gb."""
    return tuple(w for w in _NOT_ALNUM.split(name.casefold()) if w)


def model_words(name: str) -> tuple[str, ...]:
    """:func:`words` without leading brand words: 'NVIDIA Tesla T4' -> ('t4',)."""
    found = words(name)
    start = 0
    while start < len(found) and found[start] in BRAND_WORDS:
        start += 1
    return found[start:]


def name_keys(name: str) -> frozenset[str]:
    """Exact-match keys of ``name``: its words joined, with and without leading brand words."""
    keys = {"".join(words(name)), "".join(model_words(name))}
    keys.discard("")
    return frozenset(keys)
