#!/usr/bin/env bash
# `make demo`: a fake Klaviyo on 127.0.0.1 and a short tour of the klaviyo-catalog CLI against
# it. No account and no network: the real client talks HTTP to the fake, which serves seeded
# jobs. Runs with $PY: by default .venv-demo's, where `make demo` installs the package and its
# runtime dependencies only (no development toolchain).
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PY:-.venv-demo/bin/python}
[[ -x "$PY" ]] || { echo "demo: no $PY; run \`make demo\`, which installs it" >&2; exit 2; }
work=$(mktemp -d)
server=""

cleanup() {
    if [[ -n "$server" ]]; then
        kill "$server" 2>/dev/null || true  # SIGTERM: the fake stops and exits 0
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

if [[ -t 1 ]]; then bold=$'\e[1m' dim=$'\e[2m' plain=$'\e[0m'; else bold="" dim="" plain=""; fi

step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
note() { printf '%s%s%s\n' "$dim" "$*" "$plain"; }

show() { printf '%s$ %s%s\n' "$bold" "$*" "$plain"; }

# Show each command as you would type it, then run it (through "$PY -m", which works before
# and after the console script is installed).
kc() {
    show "klaviyo-catalog $*"
    "$PY" -m klaviyo_catalog "$@"
}

# Run a command that is meant to fail, and show its exit status.
kc_fails() {
    local status=0
    kc "$@" || status=$?
    note "(exit status $status)"
}

ready() {  # a value from the fake's ready file, e.g. `ready examples.item-update`
    "$PY" -c 'import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    value = value[key]
print(value)' "$work/ready.json" "$1"
}

step "1. Start a fake Klaviyo on 127.0.0.1 (seeded with a store's catalog jobs)"
"$PY" -m klaviyo_catalog fake-server --port 0 --ready-file "$work/ready.json" \
    >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do  # it writes the ready file once it is listening
    [[ -s "$work/ready.json" ]] && break
    if ! kill -0 "$server" 2>/dev/null; then
        cat "$work/server.log" >&2
        echo "demo: the fake server exited before it was ready" >&2
        exit 1
    fi
    sleep 0.1
done
[[ -s "$work/ready.json" ]] || { echo "demo: the fake server did not start in 10 s" >&2; exit 1; }

base_url=$(ready base_url)
KLAVIYO_API_KEY=$(ready api_key)
export KLAVIYO_API_KEY  # the CLI reads the key from here only, never from an option
note "listening on $base_url; KLAVIYO_API_KEY is exported (the fake's own key)"
note "every command below passes --base-url $base_url; without it, the CLI talks to Klaviyo"

step "2. Which item-create jobs are still processing? (the first 5)"
kc jobs list item-create --status processing --limit 5 --base-url "$base_url"

step "3. The same as JSON lines, for scripts: 250 jobs from 3 pages of 100, fetched lazily"
listing=(jobs list item-create --status processing --limit 250 --json --base-url "$base_url")
show "klaviyo-catalog ${listing[*]} > jobs.jsonl"
"$PY" -m klaviyo_catalog "${listing[@]}" >"$work/jobs.jsonl"
show "wc -l < jobs.jsonl"
wc -l <"$work/jobs.jsonl"
show "head -n 1 jobs.jsonl"
head -n 1 "$work/jobs.jsonl"

step "4. One item-update job, with the items it updated"
kc jobs get item-update "$(ready examples.item-update)" --include --base-url "$base_url"

step "5. Wait for a running job (a live bar on a terminal; a line per poll in a pipe)"
kc jobs wait item-update "$(ready examples.item-update-running)" --poll-interval 0.1 \
    --base-url "$base_url"

step "6. Failures: one line on stderr that says what to do, and an exit status to test"
kc_fails jobs get item-update 01JNOSUCHJOB000000000000000 --base-url "$base_url"
kc_fails jobs wait variant-update "$(ready examples.variant-update-stuck)" --timeout 1 \
    --poll-interval 0.25 --base-url "$base_url"
note "and with KLAVIYO_API_KEY unset:"
(unset KLAVIYO_API_KEY && kc_fails jobs list item-create --base-url "$base_url")

bin=$(dirname "$PY")
step "Done. Next:"
echo "  $bin/klaviyo-catalog fake-server --finish-within 5   # keep a fake running; its jobs finish"
echo "      # then, in another shell, the README's first example against it (the README says how)"
echo "  $bin/klaviyo-catalog --help"
