"""Writes one run's results: report.md (every section's tables, a summary of the issues' targets
with their 95% intervals and pass/miss/inconclusive, plots inline), results.json (everything measured) and PNG plots drawn by gnuplot
(bars with [min, max] whiskers for comparisons, lines for scaling curves, with an interval's error
bars where the points carry one)."""

import datetime
import json
import os
import shutil
import socket
import subprocess

import stats


def _quote(text):
    return '"' + str(text).replace('\\', '\\\\').replace('"', '\\"') + '"'


def draw(plot, path):
    """Renders one plot spec (see benchlib) to `path` with gnuplot. Returns an error text or None."""
    if not shutil.which("gnuplot"):
        return "gnuplot is not installed (scripts/install-deps.sh installs gnuplot-nox)"
    lines = ["set terminal png size 900,560 font ',11' noenhanced", f"set output {_quote(path)}",
             f"set title {_quote(plot['title'])}", f"set ylabel {_quote(plot.get('ylabel', ''))}",
             "set grid ytics"]
    if plot["kind"] == "bars":
        names = list(plot["series"])
        data = "\n".join(f"{_quote(n)} {v[0]} {v[1]} {v[2]}" for n, v in plot["series"].items())
        lines += ["set style fill solid 0.6 border -1", "set boxwidth 0.5", "set yrange [0:*]",
                  "set xtics rotate by 25 right" if max(len(n) for n in names) > 12 else "set xtics",
                  "set bmargin 9", "set lmargin 12", "set rmargin 4",
                  f"set xrange [-0.6:{len(names) - 0.4}]", "$d << EOD", data, "EOD",
                  "plot $d using 0:2:xtic(1) with boxes notitle lc rgb '#4a7ebb', "
                  "$d using 0:2:3:4 with yerrorbars notitle lc rgb 'black' pt 0"]
    else:
        lines += [f"set xlabel {_quote(plot.get('xlabel', ''))}", "set yrange [0:*]", "set key below"]
        if plot.get("logx"):
            lines.append("set logscale x")
        # "categorical_x": the x values evenly spaced, labelled with their values (a few points
        # that a log axis cannot show because one is 0).
        xs = sorted({p[0] for points in plot["series"].values() for p in points})
        place = {x: i for i, x in enumerate(xs)} if plot.get("categorical_x") else {x: x for x in xs}
        if plot.get("categorical_x"):
            lines += ["set xtics (" + ", ".join(f"{_quote(f'{x:,}')} {i}" for x, i in place.items()) + ")",
                      f"set xrange [-0.3:{len(xs) - 0.7}]"]
        elif any(len(p) == 4 for points in plot["series"].values() for p in points):
            # Room for the edge points' bars, tics at the points only (no negative tic in the room).
            lines += ["set offsets graph 0.03, graph 0.03, 0, 0",
                      "set xtics (" + ", ".join(f"{_quote(f'{x:,}')} {x}" for x in xs) + ")"]
        plots = []
        for i, (label, points) in enumerate(plot["series"].items()):
            # [x, y] points, or [x, y, low, high]: the interval drawn as an error bar at each point.
            lines += [f"$s{i} << EOD", *(" ".join(str(v) for v in (place[p[0]], *p[1:])) for p in points), "EOD"]
            if points and all(len(p) == 4 for p in points):
                plots.append(f"$s{i} using 1:2:3:4 with yerrorlines lw 2 pt 7 title {_quote(label)}")
            else:
                plots.append(f"$s{i} using 1:2 with linespoints lw 2 pt 7 title {_quote(label)}")
        lines.append("plot " + ", ".join(plots))
    proc = subprocess.run(["gnuplot"], input="\n".join(lines) + "\n", text=True,
                          capture_output=True, timeout=60)
    if proc.returncode != 0 or not os.path.exists(path):
        return f"gnuplot failed: {proc.stderr.strip()[:300]}"
    return None


def write(out_dir, sections, meta):
    """sections: [(name, Section)] in run order; a Section with "error" failed to run."""
    os.makedirs(out_dir, exist_ok=True)
    now = datetime.datetime.now().isoformat(timespec="seconds")
    lines = ["# bpfnet benchmarks", "",
             f"{now} on {socket.gethostname()} ({os.cpu_count()} CPUs, kernel {os.uname().release}); "
             f"{meta['runs']} interleaved runs per variant{' (quick smoke run)' if meta['quick'] else ''}; "
             "medians with [min, max]. The machines are shared and noisy: compare ratios within this "
             "report, not absolute numbers across reports.", "",
             "## Targets", "",
             "Each target is a ratio of medians over the interleaved runs, with a 95% bootstrap "
             "interval (paired resampling of the runs, bench/stats.py). **pass**: the whole interval "
             "clears the target; **miss**: the whole interval is on the wrong side; **inconclusive**: "
             f"it straddles the target, or fewer than {stats.MIN_RUNS} runs. Spread: the run-to-run "
             "coefficient of variation of the measured variant / of the reference.", "",
             "| benchmark | what | target | measured | 95% interval | runs | spread (CV) | result |",
             "|---|---|---|---|---|---|---|---|"]
    for name, sec in sections:
        for t in sec.get("targets", []):
            sp = t["spread"]
            lines.append(f"| {name} | {t['what']} | {t['target']} | {t['measured']:.2f}x | "
                         f"[{t['ci95'][0]:.2f}, {t['ci95'][1]:.2f}] | {t['runs']} | "
                         f"{sp['variant']['cv'] * 100:.1f}% / {sp['reference']['cv'] * 100:.1f}% | "
                         f"{t['verdict']} |")
    lines.append("")
    if meta.get("host_state"):
        lines += ["Host settings at the start of this run (each baseline sets its own inside its namespaces): " +
                  ", ".join(f"{k} = {v}" for k, v in meta["host_state"].items()), ""]
    results = {"generated": now, "host": socket.gethostname(), "cpus": os.cpu_count(),
               "kernel": os.uname().release, **meta, "sections": {}}
    for name, sec in sections:
        lines += [f"## {sec.get('title', name)}", ""]
        if "error" in sec:
            lines += [f"Did not run: {sec['error']}", ""]
            results["sections"][name] = {"error": sec["error"]}
            continue
        lines += sec.get("text", [])
        drawn = []
        for i, plot in enumerate(sec.get("plots", [])):
            file = plot.get("file") or f"{name}-{plot.get('metric', i)}.png"
            problem = draw(plot, os.path.join(out_dir, file))
            if problem:
                lines += [f"(plot {file}: {problem})", ""]
            else:
                lines += [f"![{plot['title']}]({file})", ""]
                drawn.append(file)
        results["sections"][name] = {"title": sec.get("title", name), "targets": sec.get("targets", []),
                                     "data": sec.get("data", {}), "plots": drawn}
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    return os.path.join(out_dir, "report.md")
