#!/usr/bin/env bash
# Mutation testing of the trust core with Stryker.NET (dotnet-stryker, pinned in .config/dotnet-tools.json).
#
#   bench/mutation/run.sh                 # every target below, one after the other
#   bench/mutation/run.sh DebianVersion   # one or more targets by name
#
# One file per run (--mutate), tests restricted to the classes that are about that file (--test-case-filter),
# per-test coverage, concurrency 1: the machine is shared, and a run of one file takes minutes, not an hour.
# Reports: bench/mutation/out/<target>/reports/mutation-report.{json,html}; a summary line per target is
# appended to bench/mutation/out/summary.tsv. Equivalent mutants are listed in bench/mutation/equivalent.tsv with a reason.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/bench/mutation/out"
concurrency="${STRYKER_CONCURRENCY:-1}"
# Stryker builds and rewrites the test project's bin/ while it runs: it works on a copy of the checkout (tracked and
# untracked-but-not-ignored files, so uncommitted edits count) and never touches the checkout's build output.
work="${STRYKER_WORK:-/tmp/hi-mutation}"

# name | file to mutate (relative to src/HardenImage) | test-case filter (dotnet test --filter syntax)
targets=(
  "DebianVersion|Apt/DebianVersion.cs|FullyQualifiedName~HardenImage.Tests.Apt.DebianVersion"
  "InReleaseVerifier|Apt/InReleaseVerifier.cs|FullyQualifiedName~HardenImage.Tests.Apt.InRelease"
  "PathSafety|Deb/PathSafety.cs|FullyQualifiedName~HardenImage.Tests.Deb.PathSafety|FullyQualifiedName~HardenImage.Tests.Deb.PathTraversal"
  "VulnerabilityPolicy|Scan/VulnerabilityPolicy.cs|FullyQualifiedName~HardenImage.Tests.Scan.PolicyGate|FullyQualifiedName~HardenImage.Tests.Scan.VulnerabilityPolicy"
  "CosignVerifier|Signing/CosignVerifier.cs|FullyQualifiedName~HardenImage.Tests.Signing.CosignVerifier|FullyQualifiedName~HardenImage.Tests.Signing.SignatureRejection"
  "ImageVerifier|Signing/ImageVerifier.cs|FullyQualifiedName~HardenImage.Tests.Signing.CosignVerifier|FullyQualifiedName~HardenImage.Tests.Signing.SignatureRejection"
)

wanted=("$@")
selected=()
for t in "${targets[@]}"; do
  name="${t%%|*}"
  if [ ${#wanted[@]} -eq 0 ] || printf '%s\n' "${wanted[@]}" | grep -qx "$name"; then selected+=("$t"); fi
done
if [ ${#selected[@]} -eq 0 ]; then
  echo "unknown target(s): $*; known: $(printf '%s ' "${targets[@]%%|*}")" >&2
  exit 2
fi

cd "$root"
dotnet tool restore >/dev/null
mkdir -p "$out"
rm -rf "$work"
mkdir -p "$work"
git ls-files -co --exclude-standard -z | grep -zv '^bench/mutation/out/' | tar -c --null --ignore-failed-read -T - | tar -x -C "$work"
cd "$work"
dotnet tool restore >/dev/null

for t in "${selected[@]}"; do
  IFS='|' read -r name file filter <<<"$t"
  dir="$out/$name"
  rm -rf "$dir"
  mkdir -p "$dir"
  # coverage-analysis is only settable in a config file; everything else is in the file too so one file says it all.
  python3 - "$dir/stryker-config.json" "$file" "$filter" "$concurrency" <<'PY'
import json, sys
path, file, flt, conc = sys.argv[1:]
json.dump({"stryker-config": {
    "project": "HardenImage.csproj",
    "mutate": [f"**/src/HardenImage/{file}"],
    "test-case-filter": flt,
    "coverage-analysis": "perTest",
    "concurrency": int(conc),
    "mutation-level": "Standard",
    "reporters": ["json", "html", "cleartext", "progress"],
    "thresholds": {"high": 90, "low": 85, "break": 0},
}}, open(path, "w"), indent=2)
PY
  echo "== $name: $file (tests: $filter)"
  start=$(date +%s)
  (cd tests/HardenImage.Tests && dotnet dotnet-stryker --config-file "$dir/stryker-config.json" \
      --output "$dir" --skip-version-check) >"$dir/stryker.log" 2>&1 || { tail -30 "$dir/stryker.log"; exit 1; }
  secs=$(( $(date +%s) - start ))
  python3 "$root/bench/mutation/summarize.py" "$name" "$dir/reports/mutation-report.json" "$secs" | tee -a "$out/summary.tsv"
done
