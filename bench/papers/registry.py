"""Claims registered before their runs: each paper's claims frozen in bench/papers/registrations/<paper>.json.

``python -m bench.papers register PAPER [--reason TEXT]`` writes the registration: for every claim of the spec,
what decides its verdict (metric, arms, where, tier selectors, direction, margin, pairing, weights, experiments,
planned pairs, role), the date, the commit it was registered at, and how many of its experiments' records already
existed (0: registered before its runs; more: registered after them, said on the page). A claim whose definition
changes must be registered again with a reason: the old entry stays, and the page lists the re-registration with its
date and what changed. A claim that leaves the spec is withdrawn the same way. ``python -m bench.papers check`` fails,
one line per claim, where a spec and its registration differ, so a margin edited in a spec cannot silently change
a verdict.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..paths import PACKAGE, RESULTS_DIR
from ..records import atomic_write_json, git_sha, read_json

REGISTRY_DIR = PACKAGE / "papers" / "registrations"


def definition(claim) -> dict[str, Any]:
    """What decides a claim's verdict: any change here is a new claim, to be registered with a reason."""
    return json.loads(json.dumps({
        "experiments": list(claim.all_experiments), "metric": claim.metric, "arms": list(claim.arms),
        "weights": list(claim.arm_weights), "where": claim.where, "tier_where": claim.tier_where,
        "direction": claim.direction, "margin": claim.margin, "pair_by": list(claim.pair_by), "seeds": claim.seeds,
        "role": claim.role,
    }, sort_keys=True, default=str))


@dataclass(frozen=True)
class Entry:
    claim: str
    registered: str          # YYYY-MM-DD
    commit: str
    records_present: int     # records of its experiments that existed when it was registered
    definition: dict | None  # None: withdrawn
    reason: str = ""

    @property
    def post_hoc(self) -> bool:
        return self.records_present > 0


def path_of(paper: str, directory: Path = REGISTRY_DIR) -> Path:
    return directory / f"{paper}.json"


def load(paper: str, directory: Path = REGISTRY_DIR) -> dict[str, list[Entry]]:
    """claim id -> its entries, oldest first."""
    data = read_json(path_of(paper, directory))
    if data is None:
        return {}
    return {cid: [Entry(cid, **e) for e in entries] for cid, entries in (data.get("claims") or {}).items()}


def _save(paper: str, entries: dict[str, list[Entry]], directory: Path) -> None:
    atomic_write_json(path_of(paper, directory), {"paper": paper, "claims": {
        cid: [{k: v for k, v in e.__dict__.items() if k != "claim"} for e in history]
        for cid, history in sorted(entries.items())}})


def latest(entries: dict[str, list[Entry]]) -> dict[str, Entry]:
    return {cid: history[-1] for cid, history in entries.items()}


def differences(claim, entry: Entry | None) -> list[str]:
    """The fields of a claim that differ from its registration (every field, if it has none)."""
    if entry is None or entry.definition is None:
        return ["not registered"]
    now = definition(claim)
    return [key for key in sorted(set(now) | set(entry.definition)) if now.get(key) != entry.definition.get(key)]


def problems(spec, directory: Path = REGISTRY_DIR) -> list[str]:
    """One line per claim whose spec and registration differ, and per registered claim the spec no longer has."""
    current = latest(load(spec.name, directory))
    lines = []
    for claim in spec.claims:
        changed = differences(claim, current.get(claim.id))
        if changed:
            lines.append(f"{spec.name}: claim {claim.id!r} differs from its registration ({', '.join(changed)}); "
                         f"register it again with a reason: python -m bench.papers register {spec.name} --reason TEXT")
    ids = {claim.id for claim in spec.claims}
    for cid, entry in current.items():
        if cid not in ids and entry.definition is not None:
            lines.append(f"{spec.name}: registered claim {cid!r} is not in the spec; withdraw it with a reason: "
                         f"python -m bench.papers register {spec.name} --reason TEXT")
    return lines


def records_of(claim, records_dir: Path) -> int:
    """How many committed records come from the claim's experiments (any tier)."""
    names = {name for tier in ("tiny", "small", "paper") for name in claim.experiment_files(tier)}
    count = 0
    for path in Path(records_dir).glob("*.json"):
        record = read_json(path) or {}
        if ((record.get("result") or {}).get("experiment")) in names:
            count += 1
    return count


def register(spec, reason: str = "", directory: Path = REGISTRY_DIR, results: Path = RESULTS_DIR,
             today: str | None = None) -> list[str]:
    """Register every new or changed claim of the spec (and withdraw the ones it dropped); a change or a withdrawal
    needs a reason. Returns one line per entry written."""
    entries = load(spec.name, directory)
    current = latest(entries)
    today = today or time.strftime("%Y-%m-%d")
    commit, written = git_sha(), []
    pending: list[Entry] = []
    for claim in spec.claims:
        previous = current.get(claim.id)
        changed = differences(claim, previous)
        if not changed:
            continue
        if previous is not None and previous.definition is not None and not reason:
            raise UserError(f"claim {claim.id!r} of {spec.name} changes ({', '.join(changed)}); valid: "
                            "register --reason TEXT saying why (the page lists every re-registration)")
        pending.append(Entry(claim.id, today, commit, records_of(claim, results / spec.name / "records"),
                             definition(claim), reason if previous is not None else ""))
    ids = {claim.id for claim in spec.claims}
    for cid, entry in current.items():
        if cid not in ids and entry.definition is not None:
            if not reason:
                raise UserError(f"registered claim {cid!r} of {spec.name} left the spec; valid: register --reason TEXT "
                                "saying why it is withdrawn")
            pending.append(Entry(cid, today, commit, entry.records_present, None, reason))
    for entry in pending:
        entries.setdefault(entry.claim, []).append(entry)
        written.append(f"{spec.name}: {'withdrew' if entry.definition is None else 'registered'} {entry.claim} "
                       f"({today}, {commit[:7]}, {entry.records_present} records present)")
    if pending:
        _save(spec.name, entries, directory)
    return written
