"""Capacity planning: projected retention per camera and recorder, and a camera-to-recorder
assignment that maximises the minimum retention. Pure Python, no Django.

Model. A recorder's usable bytes U (capacity minus the reserve) hold every camera's
footage. The sweep deletes the oldest deletable footage first, so in steady state all
cameras of a recorder reach back the same number of days D, except that a camera keeps at
least its floor and at most its ceiling:

    r_c(D) = min(ceiling_c, max(floor_c, D))      bytes_c(D) = rate_c * r_c(D)

D is the largest value with sum_c bytes_c(D) <= U (found by bisection: the sum is
non-decreasing in D). If even sum_c rate_c * floor_c > U the recorder cannot hold the
floor.

Assignment (``propose``). Maximise the minimum D over recorders, then move as few cameras
as possible:

1. Upper bound: the fluid relaxation (cameras divisible across recorders) gives the
   largest D with sum_c bytes_c(D) <= sum_j U_j. No assignment does better.
2. Candidates: (a) the current assignment; (b) LPT — cameras by decreasing rate, each to
   the recorder where it leaves the largest retention (Gonzalez, Ibarra & Sahni 1977: on
   uniform machines LPT is within 2m/(m+1) of the optimum makespan, i.e. its minimum
   retention is at least (m+1)/(2m) of the best, 2/3 for three recorders); (c) binary
   search on D where feasibility is bin packing of sizes bytes_c(D) into capacities U_j,
   tried two ways: repairing the current assignment (move the fewest cameras out of
   overfull recorders) and first-fit decreasing into the emptiest recorder.
3. Local search on each candidate: move or swap cameras between the bottleneck recorder
   and the others while the minimum improves.
4. Choose the best minimum; among candidates within ``tolerance_days`` of it, the one with
   the fewest moves; then undo any move that does not cost more than the tolerance.

The result carries the upper bound, so the gap to the optimum is stated, not assumed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

SECONDS_PER_DAY = 86400
INFINITE_DAYS = 36500.0  # "as long as the disk lasts": shown as ∞ (all cameras capped)


@dataclass(frozen=True)
class Cam:
    code: str
    recorder: str
    bytes_per_day: float
    floor_days: float
    ceiling_days: float | None = None
    movable: bool = True

    def keeps(self, days: float) -> float:
        """Days of footage this camera keeps when the recorder reaches back ``days``."""
        kept = max(self.floor_days, days)
        if self.ceiling_days is not None:
            kept = min(kept, self.ceiling_days)
        return kept

    def size(self, days: float) -> float:
        return self.bytes_per_day * self.keeps(days)


@dataclass(frozen=True)
class Bin:
    code: str
    usable_bytes: float


def _bisect(fits: Callable[[float], bool], low: float, high: float, iterations: int = 60) -> float:
    """Largest x in [low, high] with fits(x), assuming fits is monotone (True then False)."""
    if fits(high):
        return high
    for _ in range(iterations):
        mid = (low + high) / 2
        if fits(mid):
            low = mid
        else:
            high = mid
        if high - low < 1e-6:
            break
    return low


def floor_bytes(cams: Iterable[Cam]) -> float:
    return sum(c.size(0.0) for c in cams)


def recorder_days(usable: float, cams: Sequence[Cam]) -> float:
    """D for one recorder: how far back its cameras reach (INFINITE_DAYS if unbounded).

    Returns a value below the largest floor when the floor cannot be held: then the
    uniform D = usable / total rate, which is what the disk would give without floors.
    """
    if not cams:
        return INFINITE_DAYS
    total_rate = sum(c.bytes_per_day for c in cams)
    if total_rate <= 0:
        return INFINITE_DAYS
    if floor_bytes(cams) > usable:
        return max(0.0, usable / total_rate)
    return _bisect(lambda d: sum(c.size(d) for c in cams) <= usable, 0.0, INFINITE_DAYS)


def fluid_bound(bins: Sequence[Bin], cams: Sequence[Cam]) -> float:
    """Best possible minimum D if cameras could be split across recorders."""
    return recorder_days(sum(b.usable_bytes for b in bins), cams)


@dataclass
class Evaluation:
    days: dict[str, float]  # recorder -> D
    minimum: float
    holds_floor: dict[str, bool]

    @property
    def all_hold(self) -> bool:
        return all(self.holds_floor.values())


def evaluate(bins: Sequence[Bin], cams: Sequence[Cam], assign: dict[str, str]) -> Evaluation:
    by_bin: dict[str, list[Cam]] = {b.code: [] for b in bins}
    for c in cams:
        by_bin[assign[c.code]].append(c)
    days = {b.code: recorder_days(b.usable_bytes, by_bin[b.code]) for b in bins}
    holds = {b.code: floor_bytes(by_bin[b.code]) <= b.usable_bytes for b in bins}
    used = [d for b, d in days.items() if by_bin[b]]
    return Evaluation(days, min(used) if used else INFINITE_DAYS, holds)


def _score(ev: Evaluation) -> tuple[float, int]:
    # The worst recorder's retention first (when the floor cannot hold everywhere, the
    # closest every camera can come to it), then how many recorders hold their floors.
    return (round(ev.minimum, 6), sum(ev.holds_floor.values()))


# ------------------------------------------------------------------ candidate builders


def lpt(bins: Sequence[Bin], cams: Sequence[Cam]) -> dict[str, str]:
    """Largest rate first, each to the recorder where it leaves the most days."""
    load = {b.code: 0.0 for b in bins}
    cap = {b.code: b.usable_bytes for b in bins}
    assign: dict[str, str] = {}
    for c in cams:
        if not c.movable:
            assign[c.code] = c.recorder
            load[c.recorder] += c.bytes_per_day
    for c in sorted(cams, key=lambda c: (-c.bytes_per_day, c.code)):
        if not c.movable:
            continue
        best = max(
            bins,
            key=lambda b: (cap[b.code] / (load[b.code] + c.bytes_per_day), b.code == c.recorder),
        )
        assign[c.code] = best.code
        load[best.code] += c.bytes_per_day
    return assign


def _pack_ffd(bins: Sequence[Bin], cams: Sequence[Cam], days: float) -> dict[str, str] | None:
    """First-fit decreasing of sizes bytes_c(days), each into the emptiest recorder."""
    room = {b.code: b.usable_bytes for b in bins}
    assign: dict[str, str] = {}
    for c in cams:
        if not c.movable:
            assign[c.code] = c.recorder
            room[c.recorder] -= c.size(days)
    if any(r < 0 for r in room.values()):
        return None
    for c in sorted((c for c in cams if c.movable), key=lambda c: (-c.size(days), c.code)):
        size = c.size(days)
        target = max(room, key=lambda b: (room[b], b == c.recorder))
        if room[target] < size:
            return None
        assign[c.code] = target
        room[target] -= size
    return assign


def _pack_repair(bins: Sequence[Bin], cams: Sequence[Cam], days: float) -> dict[str, str] | None:
    """Keep the current assignment; move the fewest cameras out of overfull recorders."""
    assign = {c.code: c.recorder for c in cams}
    room = {b.code: b.usable_bytes for b in bins}
    members: dict[str, list[Cam]] = {b.code: [] for b in bins}
    for c in cams:
        room[c.recorder] -= c.size(days)
        members[c.recorder].append(c)
    pool: list[Cam] = []
    for b in bins:
        excess = -room[b.code]
        movable = sorted(
            (c for c in members[b.code] if c.movable), key=lambda c: (-c.size(days), c.code)
        )
        while excess > 1e-9:
            if not movable:
                return None
            # One camera that covers the whole excess, the smallest such; else the largest.
            fitting = [c for c in movable if c.size(days) >= excess]
            pick = fitting[-1] if fitting else movable[0]
            movable.remove(pick)
            pool.append(pick)
            excess -= pick.size(days)
            room[b.code] += pick.size(days)
    for c in sorted(pool, key=lambda c: (-c.size(days), c.code)):
        size = c.size(days)
        candidates = [b for b in room if b != c.recorder and room[b] >= size]
        if not candidates:
            return None
        target = max(candidates, key=lambda b: room[b])
        assign[c.code] = target
        room[target] -= size
    return assign


def _search(
    bins: Sequence[Bin],
    cams: Sequence[Cam],
    packer: Callable[[Sequence[Bin], Sequence[Cam], float], dict[str, str] | None],
    high: float,
) -> dict[str, str] | None:
    best: dict[str, str] | None = None
    low_ok = packer(bins, cams, 0.0)
    if low_ok is None:
        return None
    best = low_ok
    lo, hi = 0.0, high
    for _ in range(50):
        mid = (lo + hi) / 2
        result = packer(bins, cams, mid)
        if result is not None:
            best, lo = result, mid
        else:
            hi = mid
        if hi - lo < 1e-4:
            break
    return best


def _local_search(
    bins: Sequence[Bin], cams: Sequence[Cam], assign: dict[str, str], rounds: int = 200
) -> dict[str, str]:
    """Move or swap cameras off the bottleneck recorder while the minimum improves.

    Uses the rate model (D_j = U_j / load_j) to rank moves, and keeps a move only when the
    full model (floors, ceilings) agrees that the score improved.
    """
    assign = dict(assign)
    by_code = {c.code: c for c in cams}
    cap = {b.code: b.usable_bytes for b in bins}
    current = evaluate(bins, cams, assign)
    for _ in range(rounds):
        load = {b.code: 0.0 for b in bins}
        for code, b in assign.items():
            load[b] += by_code[code].bytes_per_day
        occupied = [b for b, total in load.items() if total > 0]
        if len(occupied) < 1:
            break
        worst = min(occupied, key=lambda b: cap[b] / load[b])
        options: list[tuple[float, dict[str, str]]] = []
        on_worst = [by_code[k] for k, b in assign.items() if b == worst and by_code[k].movable]
        for other, other_cap in cap.items():
            if other == worst:
                continue
            for c in on_worst:
                lw, lo_ = load[worst] - c.bytes_per_day, load[other] + c.bytes_per_day
                value = min(cap[worst] / lw if lw > 0 else math.inf, other_cap / lo_)
                options.append((value, {c.code: other}))
            on_other = [by_code[k] for k, b in assign.items() if b == other and by_code[k].movable]
            for c in on_worst:
                for d in on_other:
                    if d.bytes_per_day >= c.bytes_per_day:
                        continue
                    delta = c.bytes_per_day - d.bytes_per_day
                    lw, lo_ = load[worst] - delta, load[other] + delta
                    value = min(cap[worst] / lw, other_cap / lo_)
                    options.append((value, {c.code: other, d.code: worst}))
        baseline = cap[worst] / load[worst]
        improved = False
        for value, change in sorted(options, key=lambda o: -o[0])[:8]:
            if value <= baseline + 1e-9:
                break
            trial = {**assign, **change}
            ev = evaluate(bins, cams, trial)
            if _score(ev) > _score(current):
                assign, current, improved = trial, ev, True
                break
        if not improved:
            break
    return assign


def _moves(cams: Sequence[Cam], assign: dict[str, str]) -> int:
    return sum(1 for c in cams if assign[c.code] != c.recorder)


def _undo_moves(
    bins: Sequence[Bin], cams: Sequence[Cam], assign: dict[str, str], target: float
) -> dict[str, str]:
    """Send cameras back home when the minimum stays at or above the target."""
    assign = dict(assign)
    for c in sorted(cams, key=lambda c: (c.bytes_per_day, c.code)):
        if assign[c.code] == c.recorder:
            continue
        trial = {**assign, c.code: c.recorder}
        if evaluate(bins, cams, trial).minimum >= target - 1e-9:
            assign = trial
    return assign


@dataclass
class Proposal:
    assignment: dict[str, str]
    evaluation: Evaluation
    current: Evaluation
    upper_bound: float
    moves: list[tuple[str, str, str]] = field(default_factory=list)  # camera, from, to
    algorithm: str = ""

    @property
    def gap_percent(self) -> float:
        if self.upper_bound <= 0 or self.upper_bound >= INFINITE_DAYS:
            return 0.0
        return max(0.0, 100.0 * (1 - self.evaluation.minimum / self.upper_bound))


ALGORITHM = (
    "binary search on days with bin packing (repair of the current assignment, and "
    "first-fit decreasing), LPT, then local search (moves and swaps off the bottleneck "
    "recorder); ties within the tolerance go to the fewest moves. LPT alone guarantees at "
    "least (m+1)/(2m) of the optimum minimum retention (Gonzalez, Ibarra & Sahni 1977); "
    "'no assignment can exceed' is the fluid upper bound on the optimum."
)


def propose(bins: Sequence[Bin], cams: Sequence[Cam], tolerance_days: float = 0.25) -> Proposal:
    codes = {b.code for b in bins}
    cams = [c if c.recorder in codes else _homeless(c, bins) for c in cams]
    current_assign = {c.code: c.recorder for c in cams}
    current = evaluate(bins, cams, current_assign)
    upper = fluid_bound(bins, cams)
    high = min(upper, INFINITE_DAYS) + 1.0
    candidates: list[dict[str, str]] = [current_assign, lpt(bins, cams)]
    for packer in (_pack_repair, _pack_ffd):
        found = _search(bins, cams, packer, high)
        if found is not None:
            candidates.append(found)
    candidates = [_local_search(bins, cams, a) for a in candidates] + candidates
    scored = [(evaluate(bins, cams, a), a) for a in candidates]
    best = max(ev.minimum for ev, _a in scored)
    near = [(ev, a) for ev, a in scored if ev.minimum >= best - tolerance_days]
    ev, chosen = min(near, key=lambda t: (_moves(cams, t[1]), -t[0].minimum))
    chosen = _undo_moves(bins, cams, chosen, max(current.minimum, ev.minimum - tolerance_days))
    if evaluate(bins, cams, chosen).minimum <= current.minimum + 1e-9:
        chosen = current_assign  # nothing worth moving for
    final = evaluate(bins, cams, chosen)
    moves = [
        (c.code, c.recorder, chosen[c.code])
        for c in sorted(cams, key=lambda c: c.code)
        if chosen[c.code] != c.recorder
    ]
    return Proposal(chosen, final, current, upper, moves, ALGORITHM)


def _homeless(c: Cam, bins: Sequence[Bin]) -> Cam:
    """A camera on a recorder without usable volumes is planned as if on the first one."""
    return Cam(c.code, bins[0].code, c.bytes_per_day, c.floor_days, c.ceiling_days, c.movable)
