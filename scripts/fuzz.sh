#!/usr/bin/env bash
# Runs every Go fuzz target of the module, one after another.
#
#   scripts/fuzz.sh [DURATION]
#
# DURATION is a -fuzztime value per target (default 5m; "10000x" counts
# executions instead). FUZZ_PARALLEL sets the fuzz workers per target
# (default 1); FUZZ_MATCH, an extended regexp, runs only the targets whose
# names it matches; FUZZ_MINIMIZE_TIME caps the minimization of each new
# input (default 10s: go test's 60s can stall a slow target for a minute
# per new input). Prints each target's result and executions, and exits
# non-zero if any target fails. A failing input is written by go test under
# the package's testdata/fuzz/<Target>/.
set -euo pipefail

duration=${1:-5m}
parallel=${FUZZ_PARALLEL:-1}
match=${FUZZ_MATCH:-.}
minimize=${FUZZ_MINIMIZE_TIME:-10s}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
logs=$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX")

# Every "<package dir> <target>" pair, in a stable order.
targets=()
while IFS= read -r file; do
	dir=$(dirname "${file#./}")
	while IFS= read -r name; do
		targets+=("$dir $name")
	done < <(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$file" | grep -E -- "$match" || true)
done < <(grep -rl --include='*_test.go' --exclude-dir=.git --exclude-dir=vendor --exclude-dir=testdata \
	'^func Fuzz' . | sort)

if ((${#targets[@]} == 0)); then
	echo "fuzz.sh: no fuzz targets found (FUZZ_MATCH=$match)" >&2
	exit 1
fi

echo "fuzzing ${#targets[@]} targets for $duration each, -parallel $parallel; logs in $logs"
failed=0
summary=()
for target in "${targets[@]}"; do
	read -r dir name <<<"$target"
	log="$logs/${dir//\//_}.$name.log"
	echo "== $name ($dir)"
	start=$SECONDS
	if go test -run '^$' -fuzz "^$name\$" -fuzztime "$duration" -parallel "$parallel" \
		-fuzzminimizetime "$minimize" "./$dir" >"$log" 2>&1; then
		result=ok
	else
		result=FAIL
		failed=1
		# The failure, and where go test wrote the failing input.
		grep -vE '^fuzz: elapsed:' "$log" | tail -n 40 || true
	fi
	# The last progress line: "fuzz: elapsed: 5m0s, execs: 123 (41/sec), ...".
	last=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -n 1 || true)
	elapsed=$(sed -nE 's/^fuzz: elapsed: ([^,]+),.*/\1/p' <<<"$last")
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	line=$(printf '%-4s %-22s %-14s execs %-10s fuzzed %-6s wall %ss' \
		"$result" "$name" "$dir" "${execs:-?}" "${elapsed:-?}" "$((SECONDS - start))")
	echo "$line"
	summary+=("$line")
done

echo
echo "== summary (logs in $logs)"
printf '%s\n' "${summary[@]}"
exit "$failed"
