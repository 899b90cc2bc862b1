"""Verdicts that survive noise: a bootstrap confidence interval for the ratio of two variants'
medians over the interleaved runs, and the verdict it supports.

Run i of every variant was measured in the same round (interleaved), so the resampling is paired:
one bootstrap sample draws run indices with replacement and takes the ratio of the two medians
over those runs. The 2.5th and 97.5th percentiles of 2,000 such ratios are the 95% interval
(percentile bootstrap, fixed seed so a report is reproducible from its samples).

The verdict for a target "ratio >= bound" (or "<= bound"):
  pass          the whole interval clears the bound,
  miss          the whole interval is on the wrong side of it,
  inconclusive  the interval straddles the bound, or there are fewer than MIN_RUNS runs (an
                interval from one or two runs says nothing about the noise).
With the default 5 runs the bootstrap has few distinct resamples and tends to be narrower than
the truth; more runs (--runs) make the interval trustworthy, fewer than MIN_RUNS give no verdict.
Pure python, no numpy: it runs wherever the benchmarks run."""

import random
import statistics

MIN_RUNS = 3
ITERATIONS = 2000


def percentile(sorted_values, q):
    """Linear-interpolated percentile (q in [0, 1]) of an already sorted list."""
    if not sorted_values:
        raise ValueError("no values")
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def ratio_ci(num, den, confidence=0.95, iterations=ITERATIONS, seed=1):
    """(ratio of medians, low, high): the percentile-bootstrap interval of median(num)/median(den),
    resampling run indices in pairs when both have the same number of runs (interleaved runs),
    each side on its own otherwise."""
    if not num or not den:
        raise ValueError("no samples")
    point = statistics.median(num) / statistics.median(den)
    if len(num) == 1 and len(den) == 1:
        return point, point, point
    rng = random.Random(seed)
    paired = len(num) == len(den)
    ratios = []
    for _ in range(iterations):
        if paired:
            idx = [rng.randrange(len(num)) for _ in num]
            n, d = [num[i] for i in idx], [den[i] for i in idx]
        else:
            n = [rng.choice(num) for _ in num]
            d = [rng.choice(den) for _ in den]
        md = statistics.median(d)
        if md:
            ratios.append(statistics.median(n) / md)
    ratios.sort()
    alpha = (1 - confidence) / 2
    return point, percentile(ratios, alpha), percentile(ratios, 1 - alpha)


def median_ci(values, confidence=0.95, iterations=ITERATIONS, seed=1):
    """(median, low, high): the percentile-bootstrap interval of one variant's median over many
    repetitions of a short operation (resampling the repetitions). The repetitions of one round
    share that round's machine state, so this interval covers the operation-to-operation noise,
    not the drift between rounds: the targets (ratio_target over the rounds' medians) do that."""
    if not values:
        raise ValueError("no samples")
    point = statistics.median(values)
    if len(values) == 1:
        return point, point, point
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(iterations))
    alpha = (1 - confidence) / 2
    return point, percentile(meds, alpha), percentile(meds, 1 - alpha)


def verdict(low, high, bound, op, runs):
    """"pass", "miss" or "inconclusive" for the target `ratio op bound` given its interval."""
    if op not in (">=", "<="):
        raise ValueError(f"unknown comparison {op}")
    if runs < MIN_RUNS:
        return "inconclusive"
    if op == ">=":
        return "pass" if low >= bound else "miss" if high < bound else "inconclusive"
    return "pass" if high <= bound else "miss" if low > bound else "inconclusive"


def spread(values):
    """Run-to-run spread of one variant's samples: relative (max - min) / median and the
    coefficient of variation (stdev / mean; 0 with one run)."""
    med = statistics.median(values)
    rel = (max(values) - min(values)) / med if med else 0.0
    cv = statistics.stdev(values) / statistics.mean(values) if len(values) > 1 and statistics.mean(values) else 0.0
    return {"range_rel": rel, "cv": cv}


def ratio_target(what, num, den, bound, op):
    """A target entry for the report: the ratio of medians, its interval, the verdict, the number
    of runs and the run-to-run spread of both sides."""
    point, low, high = ratio_ci(num, den)
    runs = min(len(num), len(den))
    return {"what": what, "target": f"{op} {bound}x", "bound": bound, "op": op,
            "measured": round(point, 3), "ci95": [round(low, 3), round(high, 3)], "runs": runs,
            "verdict": verdict(low, high, bound, op, runs),
            "spread": {"variant": spread(num), "reference": spread(den)}}
