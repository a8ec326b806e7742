"""MATH (Hendrycks et al. 2021) answers: the gold is the last ``\\boxed{...}`` of a solution, a MetaMath-trained model
says "The answer is: X", and two answers agree when they are equal after the benchmark's normalisation (fractions,
units, spaces, degree signs, ``k = 2`` → ``2``). Written after the benchmark's published equivalence check, which
MetaMath's evaluation (MoRA Table 1) uses."""

from __future__ import annotations

import re


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced; None if there is none."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:  # "\boxed 5"
        rest = text[start:].split(" ", 1)
        return rest[1].split("$")[0].strip() if len(rest) > 1 else None
    depth = 0
    for i in range(brace, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[brace + 1:i]
    return None


def predicted_answer(text: str) -> str | None:
    """What a generation answers: after the last "The answer is" (MetaMath's format), else its last box."""
    found = re.split(r"[Tt]he answer is:?", text)
    if len(found) > 1:
        answer = found[-1].strip().split("\n")[0].strip()
        return answer.rstrip(".").strip() or None
    return last_boxed(text)


def _braced_fracs(s: str) -> str:
    """\\frac12 → \\frac{1}{2}, \\frac1{72} → \\frac{1}{72}."""
    parts = s.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if part.startswith("{") or len(part) < 2:
            out += part
            continue
        a, rest = part[0], part[1:]
        if rest.startswith("{"):
            out += "{" + a + "}" + rest
        else:
            out += "{" + a + "}{" + rest[0] + "}" + rest[1:]
    return out


def normalize(answer: str) -> str:
    s = answer.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac").replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "").replace("$", "")
    if "\\text{ " in s:  # a trailing unit: "5 \text{ cm}"
        s = s.split("\\text{ ")[0]
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if s.startswith("."):
        s = "0" + s
    if s.count("=") == 1 and len(s.split("=")[0].strip()) <= 2:  # "k = 2" → "2"
        s = s.split("=")[1]
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    s = s.replace(" ", "")
    s = _braced_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    simple = re.fullmatch(r"(-?\d+)/(\d+)", s)
    if simple:
        s = f"\\frac{{{simple.group(1)}}}{{{simple.group(2)}}}"
    return s


def equivalent(predicted: str | None, gold: str | None) -> bool:
    if predicted is None or gold is None:
        return False
    try:
        return normalize(predicted) == normalize(gold)
    except (IndexError, ValueError):
        return predicted.strip() == gold.strip()
