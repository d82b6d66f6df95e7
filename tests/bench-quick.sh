#!/bin/bash
# bench/run --quick against the tree make check built, so that the benchmark
# cannot rot: every case of every server must come out with a number of
# requests per second above zero (none is compared with any aim: no timing is
# checked), Mandate's without a single refused request, with start-to-ready
# and memory figures, the report and (with gnuplot) the plot; no server may be
# left running. A peer that could not be set up (not installed, no npm
# registry) is skipped with bench/run's reason; .ci/install-deps installs them
# all, so CI measures everything.
. "${MANDATE_SRCDIR:-.}/tests/e2e/lib.sh"

OUT="$TMP/report/quick.md"
mkdir -p "$TMP/report"
start=$(date +%s)
# timeout: a hung server must fail the test, not the suite; bench/run stops
# every server it started when it gets SIGTERM
MANDATE_BENCH_BUILD="$BUILDDIR" timeout 600 bash "$SRCDIR/bench/run" --quick --out "$OUT" \
    >"$TMP/stdout" 2>"$TMP/stderr"
status=$?
echo "bench/run --quick: exit $status after $(($(date +%s) - start)) s; its progress:"
sed 's/^/  /' "$TMP/stderr"
expect_eq "bench/run --quick exits 0" 0 "$status"

RESULTS="${OUT%.md}.tsv"
FACTS="${OUT%.md}.facts"
check "the report is written" test -s "$OUT"
check "the report is also on standard output" grep -q '^## Side by side with peers' "$TMP/stdout"
[ -s "$RESULTS" ] || { fail "no results table ($RESULTS)"; finish; exit 1; }

fact() { awk -F'\t' -v k="$1" '$1 == k { v = $2 } END { print v }' "$FACTS"; }
skipped() { fact "skipped.$1"; }
# rps SERVER CASE CLIENTS: the requests/s of each point, space-separated
rps() { awk -F'\t' -v s="$1" -v c="$2" -v n="$3" '$1 == s && $2 == c && $3 == n { printf "%s ", $5 }' "$RESULTS"; }
refused() { awk -F'\t' -v s="$1" -v c="$2" -v n="$3" '$1 == s && $2 == c && $3 == n { r += $9 + $10 } END { print r + 0 }' "$RESULTS"; }
# expect_numbers WHAT SERVER CASE CLIENTS
expect_numbers() {
    local got
    got=$(rps "$2" "$3" "$4")
    CHECKS=$((CHECKS + 1))
    if awk -v g="$got" 'BEGIN { n = split(g, v, " "); for (i = 1; i <= n; i++) if (!(v[i] + 0 > 0)) exit 1; exit n == 0 }'; then
        pass "$1: $got/s"
    else
        fail "$1: no figure (got '$got')"
    fi
}

SCALES=$(awk -F'\t' '$1 == "mandate" && $2 !~ /^signin-/ { print $3 }' "$RESULTS" | sort -un | tr '\n' ' ')
expect_eq "Mandate measured at two scales" 2 "$(echo $SCALES | wc -w)"
for n in $SCALES; do
    for c in cc-es256 cc-eddsa cc-rs256 cc-opaque introspect gateway exchange-saml exchange-oidc; do
        why=$(skipped "$c")
        if [ -n "$why" ]; then
            echo "SKIP: Mandate $c: $why"
            continue
        fi
        expect_numbers "Mandate $c, $n clients" mandate "$c" "$n"
        expect_eq "Mandate $c, $n clients: no refused request" 0 "$(refused mandate "$c" "$n")"
    done
    ready=$(fact "ready.mandate.$n")
    check "Mandate with $n clients: start to ready measured (${ready:-none} ms)" \
        awk -v v="$ready" 'BEGIN { exit !(v > 0) }'
    check "Mandate with $n clients: idle RSS measured" test "$(fact "rss_idle.mandate.$n")" -gt 0
done
first=${SCALES%% *}
for c in audit-off audit-batch; do
    expect_numbers "Mandate $c" mandate "$c" "$first"
done
# the scales side by side, interleaved: each case at both, and the goal
# judged on them
for n in $SCALES; do
    for c in cc-es256 cc-eddsa cc-rs256 cc-opaque introspect gateway; do
        expect_numbers "Mandate $c, $n clients, interleaved" mandate "ab1-$c" "$n"
        expect_eq "Mandate $c, $n clients, interleaved: no refused request" 0 "$(refused mandate "ab1-$c" "$n")"
    done
done
check "the report has the interleaved table" grep -q '^### From .* clients, interleaved' "$OUT"
check "the scale goal is judged on the interleaved runs" \
    grep -q '^- at most 10% throughput lost .*interleaved medians' "$OUT"
check "the one-thread path (-c1) was run" \
    awk -F'\t' '$1 == "mandate" && $4 == 1 { f = 1 } END { exit !f }' "$RESULTS"

peer() { # SERVER CASE...
    local server=$1 why c
    shift
    why=$(skipped "$server")
    if [ -n "$why" ]; then
        echo "SKIP: $server: $why"
        return
    fi
    for c in "$@"; do
        why=$(skipped "$server-${c##*-}")
        if [ -n "$why" ]; then
            echo "SKIP: $server $c: $why"
            continue
        fi
        expect_numbers "$server $c" "$server" "$c" 1
    done
    check "$server: start to ready measured" awk -v v="$(fact "ready.$server")" 'BEGIN { exit !(v > 0) }'
    check "$server: idle RSS measured" test "$(fact "rss_idle.$server")" -gt 0
}
# nginx's row is the static file (clients 0)
why=$(skipped nginx)
if [ -n "$why" ]; then echo "SKIP: nginx: $why"; else expect_numbers "nginx static file" nginx static 0; fi
peer oidc-provider cc-es256 cc-eddsa cc-rs256 cc-opaque introspect
peer glewlwyd cc-es256-pbkdf2 cc-es256-cheap
if [ -z "$(skipped glewlwyd)$(skipped glewlwyd-cheap)" ]; then
    expect_eq "glewlwyd's secret stored again with 1 PBKDF2 iteration" 1 "$(fact glewlwyd.cheap_hash)"
fi
# the sign-in cases (issue 22): one client, each server with a signed-in
# browser; Mandate's without a refused request (a code taken twice, a
# rotated refresh token used again, would be)
for server in mandate oidc-provider; do
    why=$(skipped "$server-signin")
    if [ -n "$why" ]; then
        echo "SKIP: $server sign-in: $why"
        continue
    fi
    for c in signin-authorize signin-code signin-refresh; do
        expect_numbers "$server $c" "$server" "$c" 1
        if [ "$server" = mandate ]; then
            expect_eq "Mandate $c: no refused request" 0 "$(refused mandate "$c" 1)"
        fi
    done
done
check "the report has the sign-in table" grep -q '^### Sign-in (issue 22)' "$OUT"
for what in "ES256" "EdDSA" "RS256"; do
    check "openssl speed $what measured" test "$(fact "speed.$what")" -gt 0
done
if command -v gnuplot >/dev/null; then
    check "the plot is drawn" test -s "${OUT%.md}.png"
else
    echo "SKIP: gnuplot is not installed: no plot"
fi
check "the goals are listed" grep -q "^### The issue's goals" "$OUT"

# nothing left running: every server bench/run starts has its temp folder in
# its command line
sleep 0.5
tmp=$(fact tmp)
left=""
[ -n "$tmp" ] && left=$(pgrep -af "$tmp" || true)
expect_eq "no server left running" "" "$left"
finish
