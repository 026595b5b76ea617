#!/usr/bin/env python3
"""Summarise one Stryker JSON report: score, and every mutant that was not killed, one line each.

score     = killed+timeout / (killed+timeout+survived+nocoverage)         (Stryker's own number)
adjusted  = the same with the mutants listed in equivalent.tsv taken out of the denominator
            (never counted as killed; each has a reason in that file).
"""
import json, os, sys

name, report, secs = sys.argv[1], sys.argv[2], sys.argv[3]
only = sys.argv[4] if len(sys.argv) > 4 else None  # count only this file (relative to src/HardenImage)
span = None  # "File.cs{a..b}": only mutants on lines a..b of that file
if only and "{" in only:
    only, rng = only.rstrip("}").split("{", 1)
    span = tuple(int(x) for x in rng.split(".."))
here = os.path.dirname(os.path.abspath(__file__))
equivalent = {}
eq_path = os.path.join(here, "equivalent.tsv")
if os.path.exists(eq_path):
    for line in open(eq_path):
        if line.strip() and not line.startswith("#"):
            # file <TAB> line <TAB> mutator <TAB> replacement <TAB> reason
            f, ln, mut, repl, reason = line.rstrip("\n").split("\t", 4)
            equivalent[(f, int(ln), mut, repl)] = reason

data = json.load(open(report))
counts = {}
open_mutants = []
eq_hits = 0
for path, f in data["files"].items():
    short = path.split("src/HardenImage/")[-1]
    if only is not None and short != only:
        continue
    src = f["source"].splitlines()
    for m in f["mutants"]:
        if span and not (span[0] <= m["location"]["start"]["line"] <= span[1]):
            continue
        s = m["status"]
        counts[s] = counts.get(s, 0) + 1
        if s == "Ignored":
            continue
        if s in ("Survived", "NoCoverage"):
            ln = m["location"]["start"]["line"]
            key = (short, ln, m["mutatorName"], m.get("replacement", ""))
            if key in equivalent:
                eq_hits += 1
                continue
            open_mutants.append(f"  {s:10} {short}:{ln} {m['mutatorName']}: {m.get('replacement','')!r}  | {src[ln-1].strip()[:90]}")

killed = counts.get("Killed", 0) + counts.get("Timeout", 0)
undetected = counts.get("Survived", 0) + counts.get("NoCoverage", 0)
total = killed + undetected
score = 100.0 * killed / total if total else 0.0
adj_total = total - eq_hits
adjusted = 100.0 * killed / adj_total if adj_total else 0.0
print(f"{name}\tscore {score:.1f}%\tadjusted {adjusted:.1f}%\tkilled {killed}\tsurvived {counts.get('Survived',0)}"
      f"\tnocoverage {counts.get('NoCoverage',0)}\tequivalent {eq_hits}\tcompile-errors {counts.get('CompileError',0)}"
      f"\tignored {counts.get('Ignored',0)}\t{secs}s")
for line in open_mutants:
    print(line, file=sys.stderr)
