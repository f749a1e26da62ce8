# Shared helpers for the project's scripts. Every installer is idempotent:
# it checks first and installs only what is missing.

step() {
    printf '\n==> %s\n' "$*"
}

ensure_rust_components() {
    local installed
    installed=$(rustup component list --installed 2>/dev/null || true)
    for component in rustfmt clippy; do
        if ! grep -q "^${component}" <<<"$installed"; then
            rustup component add "$component"
        fi
    done
}

ensure_wasm_target() {
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        rustup target add wasm32-unknown-unknown
    fi
}

# Steps of the test command. `run_step NAME COMMAND...` runs COMMAND with its
# output shown and kept, prints its wall time and outcome, and records both
# in $SEQSYNC_STEP_LOGS (a folder the caller made) for `print_summary`. It
# returns the command's status and never stops the caller: every step runs
# to the end, and the summary says which failed.
run_step() {
    local name=$1
    shift
    local dir=${SEQSYNC_STEP_LOGS:?run_step needs SEQSYNC_STEP_LOGS}
    local index
    index=$(($(find "$dir" -name '*.log' | wc -l) + 1))
    local log
    log=$(printf '%s/%03d.log' "$dir" "$index")
    step "$name"
    local start=$SECONDS status
    "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    local took=$((SECONDS - start))
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$took" "$log" >>"$dir/steps.tsv"
    if [ "$status" -eq 0 ]; then
        printf '<== %s: ok in %ss\n' "$name" "$took"
    else
        printf '<== %s: FAILED (exit %s) in %ss\n' "$name" "$status" "$took"
    fi
    return "$status"
}

# Records a step that could not run because one it needs failed.
skip_step() {
    local name=$1 why=$2
    local dir=${SEQSYNC_STEP_LOGS:?skip_step needs SEQSYNC_STEP_LOGS}
    step "$name"
    printf 'not run: %s\n' "$why"
    printf '%s\tnot run\t0\t\n' "$name" >>"$dir/steps.tsv"
}

# Counts the tests of one step's log, from what each runner prints:
# - cargo test and wasm-bindgen-test: "test result: ok. N passed; M failed;
#   I ignored; B measured; F filtered out"; a `no_run` doctest ("... - compile
#   ... ok") was compiled, not run, so it counts as skipped, not passed;
# - node's test runner with the TAP reporter: "# pass N", "# fail N",
#   "# cancelled N", "# skipped N", "# todo N".
# Prints "passed failed skipped" (skipped: ignored, filtered out, compiled
# only, skipped, todo and cancelled).
count_tests() {
    awk '
        /^test result:/ {
            for (i = 1; i <= NF; i++) {
                n = $(i - 1) + 0
                if ($i ~ /^passed/) passed += n
                else if ($i ~ /^failed/) failed += n
                else if ($i ~ /^ignored/) skipped += n
                else if ($i ~ /^filtered/) skipped += n
            }
        }
        /^test .* - compile \.\.\. ok$/ { compiled += 1 }
        /^# pass [0-9]+$/ { passed += $3 }
        /^# fail [0-9]+$/ { failed += $3 }
        /^# (skipped|todo|cancelled) [0-9]+$/ { skipped += $3 }
        END { printf "%d %d %d\n", passed - compiled, failed, skipped + compiled }
    ' "$1"
}

# Prints every step with its outcome, wall time and test counts, then the
# closing line "N passed, M failed, K skipped" over the tests that ran.
# Returns non-zero when a step failed or did not run.
print_summary() {
    local dir=${SEQSYNC_STEP_LOGS:?print_summary needs SEQSYNC_STEP_LOGS}
    local total_passed=0 total_failed=0 total_skipped=0 broken=0
    local name status took log passed failed skipped outcome
    step "summary"
    printf '%-68s %8s %7s %7s %7s %8s\n' step outcome seconds passed failed skipped
    while IFS=$'\t' read -r name status took log; do
        passed=0 failed=0 skipped=0
        if [ -n "$log" ] && [ -f "$log" ]; then
            read -r passed failed skipped < <(count_tests "$log")
        fi
        case $status in
            0) outcome=ok ;;
            "not run") outcome="not run"; broken=1 ;;
            *) outcome=FAILED; broken=1 ;;
        esac
        printf '%-68.68s %8s %7s %7s %7s %8s\n' "$name" "$outcome" "$took" "$passed" "$failed" "$skipped"
        total_passed=$((total_passed + passed))
        total_failed=$((total_failed + failed))
        total_skipped=$((total_skipped + skipped))
    done <"$dir/steps.tsv"
    printf 'wall time: %ss\n' "$SECONDS"
    printf 'summary: %d passed, %d failed, %d skipped\n' "$total_passed" "$total_failed" "$total_skipped"
    if [ "$broken" -ne 0 ] || [ "$total_failed" -ne 0 ]; then
        return 1
    fi
}
