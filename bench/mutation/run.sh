#!/usr/bin/env bash
# Mutation testing of the trust core with Stryker.NET (dotnet-stryker, pinned in .config/dotnet-tools.json).
#
#   bench/mutation/run.sh                          # every target below, in one Stryker run
#   bench/mutation/run.sh DebianVersion PathSafety # some targets by name
#   STRYKER_ONE_BY_ONE=1 bench/mutation/run.sh     # one Stryker run per target (slower: one full build each)
#
# Stryker instruments the whole project whatever --mutate says (mutants outside it are "Ignored"), so the build is
# the fixed cost of a run (~7 min on the shared 2-core machine); targets therefore share one run by default. Tests
# are restricted to the classes about each target (the union of their filters), coverage is per test (each mutant
# runs only the tests that reach it), concurrency 1 (shared machine). Reports: bench/mutation/out/<run>/reports/
# mutation-report.{json,html}; one summary line per target goes to stdout and bench/mutation/out/summary.tsv, the
# mutants that were not killed to stderr. Equivalent mutants are listed in bench/mutation/equivalent.tsv with a
# reason: they are taken out of the "adjusted" score, never counted as killed.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/bench/mutation/out"
concurrency="${STRYKER_CONCURRENCY:-1}"
# Stryker builds and rewrites the test project's bin/ while it runs: it works on a copy of the checkout (tracked and
# untracked-but-not-ignored files, so uncommitted edits count) and never touches the checkout's build output. The
# copy is per checkout: the script empties it first, so two worktrees sharing one directory would wreck each other's run.
work="${STRYKER_WORK:-/tmp/hi-mutation-$(printf '%s' "$root" | sha256sum | cut -c1-12)}"

# vstest starts a fresh test host for every mutant, so per-process set-up is paid per mutant. Left out for that:
# the dpkg oracle test (compiles C, spawns ~300 processes) and the InRelease tests that build a gpg-signed apt
# repository (gpg key generation). Their checks are reached by the crafted tests that stay in, and the scores are
# LOWER bounds for DebianVersion and InReleaseVerifier.
slow='FullyQualifiedName!~Compare_AgreesWithDpkgOnGeneratedPairs&FullyQualifiedName!~Verify_UnknownKey_NamesSourceAndKeyIds&FullyQualifiedName!~Verify_FixtureRepositories&FullyQualifiedName!~Keyring_ArmouredFileWithSeveralKeyBlocks'

# name | file to mutate (relative to src/HardenImage) | test-case filter (dotnet test --filter syntax)
targets=(
  "DebianVersion|Apt/DebianVersion.cs|FullyQualifiedName~HardenImage.Tests.Apt.DebianVersion"
  "InReleaseVerifier|Apt/InReleaseVerifier.cs|FullyQualifiedName~HardenImage.Tests.Apt.InRelease"
  "PathSafety|Deb/PathSafety.cs|FullyQualifiedName~HardenImage.Tests.Deb.PathSafety|FullyQualifiedName~HardenImage.Tests.Deb.PathTraversal"
  "VulnerabilityPolicy|Scan/VulnerabilityPolicy.cs|FullyQualifiedName~HardenImage.Tests.Scan.PolicyGate|FullyQualifiedName~HardenImage.Tests.Scan.VulnerabilityPolicy"
  "CosignVerifier|Signing/CosignVerifier.cs|FullyQualifiedName~HardenImage.Tests.Signing.CosignVerifier|FullyQualifiedName~HardenImage.Tests.Signing.SignatureRejection"
  "ImageVerifier|Signing/ImageVerifier.cs|FullyQualifiedName~HardenImage.Tests.Signing.SignatureRejection|FullyQualifiedName~HardenImage.Tests.Signing.ImageSigner"
  # The merge of package entries into the image tree (ImageBuilder.Merge and Place): a line span, kept in step with the file.
  "BuildMerge|Build/ImageBuilder.cs{$(grep -n 'private static void Merge(FsTree' "$root/src/HardenImage/Build/ImageBuilder.cs" | cut -d: -f1)..$(grep -n 'private void AddPayload' "$root/src/HardenImage/Build/ImageBuilder.cs" | cut -d: -f1)}|FullyQualifiedName~HardenImage.Tests.Build.BuildRejection|FullyQualifiedName~HardenImage.Tests.Build.HardeningByIdentity|FullyQualifiedName~HardenImage.Tests.Build.BuildMerge"
)

selected=()
for t in "${targets[@]}"; do
  name="${t%%|*}"
  if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx "$name"; then selected+=("$t"); fi
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

# run <run-name> <target>...: one Stryker run over the given targets, then one summary line per target.
run() {
  local name="$1"; shift
  local dir="$out/$name" files=() filters=()
  rm -rf "$dir"; mkdir -p "$dir"
  for t in "$@"; do
    IFS='|' read -r _ file filter <<<"$t"
    files+=("$file"); filters+=("$filter")
  done
  local filter
  filter="($(IFS='|'; echo "${filters[*]}"))&$slow"
  # coverage-analysis is only settable in a config file; everything else is in the file too so one file says it all.
  python3 - "$dir/stryker-config.json" "$filter" "$concurrency" "${files[@]}" <<'PY'
import json, os, sys
path, flt, conc, *files = sys.argv[1:]

def pattern(f):
    # "File.cs{a..b}" names lines a..b; Stryker's span is in characters, so translate.
    if "{" not in f:
        return f"**/src/HardenImage/{f}"
    name, rng = f.rstrip("}").split("{", 1)
    first, last = (int(x) for x in rng.split(".."))
    text = open(os.path.join("src/HardenImage", name), encoding="utf-8").read().split("\n")
    start = sum(len(l) + 1 for l in text[:first - 1])
    end = sum(len(l) + 1 for l in text[:last])
    return f"**/src/HardenImage/{name}{{{start}..{end}}}"

json.dump({"stryker-config": {
    "project": "HardenImage.csproj",
    "mutate": [pattern(f) for f in files],
    "test-case-filter": flt,
    "coverage-analysis": "perTest",
    "concurrency": int(conc),
    "mutation-level": "Standard",
    "reporters": ["json", "html", "cleartext", "progress"],
    "thresholds": {"high": 90, "low": 85, "break": 0},
}}, open(path, "w"), indent=2)
PY
  echo "== $name: ${files[*]} (tests: $filter)" >&2
  local start secs
  start=$(date +%s)
  (cd tests/HardenImage.Tests && dotnet dotnet-stryker --config-file "$dir/stryker-config.json" \
      --output "$dir" --skip-version-check) >"$dir/stryker.log" 2>&1 || { tail -30 "$dir/stryker.log" >&2; return 1; }
  secs=$(( $(date +%s) - start ))
  for t in "$@"; do
    IFS='|' read -r tname file _ <<<"$t"
    python3 "$root/bench/mutation/summarize.py" "$tname" "$dir/reports/mutation-report.json" "$secs" "$file" | tee -a "$out/summary.tsv"
  done
}

if [ -n "${STRYKER_ONE_BY_ONE:-}" ]; then
  for t in "${selected[@]}"; do run "${t%%|*}" "$t"; done
else
  run "run-$(date -u +%Y%m%dT%H%M%S)" "${selected[@]}"
fi
