# bench/run's report: reads its facts (key TAB value) and its results (one row
# per wrk run: server case clients conns rps p50 p99 p999 non200 errors
# cpu_us rss_kib) and prints Markdown; writes the plot's data to `datafile`.
# Variables (-v): date cmd sweep scales duration goalc png quick datafile;
# signin_sweep: the sign-in cases' concurrencies; only="signin" (bench/run
# --signin): the sign-in cases alone.
BEGIN {
    FS = "\t"
    nconns = split(sweep, CONNS, " ")
    nscales = split(scales, SCALES, " ")
    nsweep = split(signin_sweep, SWEEPS, " ")
    s1 = SCALES[1]; s2 = SCALES[nscales]
    # each case's label (L); MCASES and SCASES: Mandate's cases and the
    # sign-in cases, in the report's order
    ncase = cases("cc-es256|client credentials, JWT ES256|" \
        "cc-eddsa|client credentials, JWT EdDSA|cc-rs256|client credentials, JWT RS256|" \
        "cc-opaque|client credentials, opaque|introspect|introspection (RFC 7662)|gateway|gateway check|" \
        "exchange-saml|token exchange, SAML assertion|exchange-oidc|token exchange, OIDC id_token", MCASES)
    cases("audit-off|client credentials ES256, audit fsync off|" \
        "audit-batch|client credentials ES256, audit fsync batch|" \
        "cc-es256-pbkdf2|client credentials, JWT ES256, as shipped (secret: PBKDF2, 150,000 iterations)|" \
        "cc-es256-cheap|client credentials, JWT ES256, secret hashed with 1 PBKDF2 iteration|" \
        "static|static 200-byte JSON (the HTTP ceiling)", OTHER_CASES)
    nsignin = cases("signin-authorize|sign-in: the authorization request, live session (answered with a code)|" \
        "signin-code|sign-in: authorization code redemption (PKCE S256)|" \
        "signin-refresh|sign-in: refresh token (rotated)", SCASES)
    PEER["cc-es256"] = "cc-es256"; PEER["cc-eddsa"] = "cc-eddsa"; PEER["cc-rs256"] = "cc-rs256"
    PEER["cc-opaque"] = "cc-opaque"; PEER["introspect"] = "introspect"; PEER["gateway"] = "introspect"
    PEER["audit-off"] = "cc-es256"; PEER["audit-batch"] = "cc-es256"
    ALG["cc-es256"] = "ES256"; ALG["cc-eddsa"] = "EdDSA"; ALG["cc-rs256"] = "RS256"
    ALG["audit-off"] = "ES256"; ALG["audit-batch"] = "ES256"
}
FNR == NR { F[$1] = $2; next }
{
    k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
    R[k, "rps"] = $5; R[k, "p50"] = $6; R[k, "p99"] = $7; R[k, "p999"] = $8
    R[k, "non200"] = $9; R[k, "errors"] = $10; R[k, "cpu"] = $11; R[k, "rss"] = $12
    HAVE[$1, $2, $3] = 1
    HAVE_SERVER[$1] = 1
    key = ($1 == "mandate") ? $1 SUBSEP $3 : $1
    # the sign-in cases run other servers (another peer script, another
    # state): their memory is not the sweep's
    if ($2 !~ /^signin-/ && $12 + 0 > PEAK[key] + 0) PEAK[key] = $12
    if (!(($1, $2, $3) in ORDERED)) { ORDERED[$1, $2, $3] = 1; ROWS[++nrows] = $1 SUBSEP $2 SUBSEP $3 }
}

function commas(x,    s, neg) {
    if (x == "" || x == "-") return "-"
    x = sprintf("%.0f", x)
    neg = (x + 0 < 0); if (neg) x = substr(x, 2)
    s = ""
    while (length(x) > 3) { s = "," substr(x, length(x) - 2) s; x = substr(x, 1, length(x) - 3) }
    return (neg ? "-" : "") x s
}
function ratio(a, b) {
    if (a == "" || b == "" || a == "-" || b == "-" || b + 0 <= 0) return "-"
    a = a / b
    if (a >= 10) return sprintf("%.0f×", a)
    if (a >= 1) return sprintf("%.1f×", a)
    return sprintf("%.2f×", a)
}
function get(server, c, clients, conns, field,    k) {
    k = server SUBSEP c SUBSEP clients SUBSEP conns
    return ((k, field) in R) ? R[k, field] : ""
}
function mib(kib) { return (kib == "" || kib + 0 == 0) ? "-" : sprintf("%.1f", kib / 1024) }
function ms(x) { return (x == "") ? "-" : x }
function met(ok) { return ok ? "**met**" : "**not met**" }
function scale_name(n) { return commas(n) }
# the interleaved runs of case c at n clients: their median, and their list
function ab_median(c, n,    i, k, v, t, j) {
    k = 0
    for (i = 1; i <= F["ab_reps"]; i++) {
        t = get("mandate", "ab" i "-" c, n, goalc, "rps")
        if (t == "") continue
        v[++k] = t + 0
        for (j = k; j > 1 && v[j] < v[j - 1]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    }
    if (k == 0) return ""
    return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
}
function ab_list(c, n,    i, out, t) {
    out = ""
    for (i = 1; i <= F["ab_reps"]; i++) {
        t = get("mandate", "ab" i "-" c, n, goalc, "rps")
        if (t != "") out = out (out == "" ? "" : " / ") commas(t)
    }
    return out
}
function label(c) { return (c in L) ? L[c] : c }
# cases("NAME|LABEL|NAME|LABEL...", ORDER): each LABEL into L[NAME], the
# names into ORDER[1..n]; returns n
function cases(list, ORDER,    f, n, i) {
    n = split(list, f, "|")
    for (i = 1; i < n; i += 2) { ORDER[(i + 1) / 2] = f[i]; L[f[i]] = f[i + 1] }
    return n / 2
}

END {
    quickmark = quick ? " (quick run: a smoke test, not figures to record)" : ""
    if (only == "signin") printf "## Sign-in, side by side with oidc-provider (issue 22): run of %s%s\n\n", date, quickmark
    else printf "## Side by side with peers (issue 10): run of %s%s\n\n", date, quickmark
    printf "- command: `%s` (%d s per point, wrk `-t2 -cN`, `-t1` for `-c1`, `--timeout 10s`, on the same host; %d min in all)\n", cmd, duration, int(F["elapsed_s"] / 60 + 0.5)
    printf "- machine: %s; %s\n", F["machine"], F["os"]
    printf "- versions: %s; oidc-provider %s\n", F["versions"], (F["version.oidc-provider"] != "" ? F["version.oidc-provider"] : "-")
    if (only != "signin") printf "- Mandate: one daemon (worker threads: one per core), SQLite store, audit trail fsync \"batch\" (as shipped), no rate limit, log level warning; %s clients provisioned with `mandatectl client import` (half JWT, half opaque); wrk spreads the load over up to %s of each kind, taken at random (introspection and the gateway check: tokens of up to 2,000 of them, checked in turn)\n", (nscales > 1 ? commas(s1) " and " commas(s2) : commas(s1)), commas(F["sample"])
    if ("glewlwyd.stop_signal" in F) printf "- glewlwyd died of signal %s when it was stopped with SIGTERM (after its runs; the figures are not affected)\n", F["glewlwyd.stop_signal"]
    if (("glewlwyd.cheap_hash" in F) && F["glewlwyd.cheap_hash"] != "1") printf "- **glewlwyd's secret was not stored again with 1 iteration** (stored: %s): its \"cheap hashing\" rows are not what they say\n", F["glewlwyd.cheap_hash"]
    for (k in F) if (k ~ /^skipped\./) { sub(/^skipped\./, "", k); printf "- **not measured: %s**: %s\n", k, F["skipped." k] }
    print ""

    if (only != "signin") everything_else()
    signin()
    goals()
}

function signin(    c, i, cs, conns, m, o, mc, oc, any) {
    any = 0
    for (c = 1; c <= nsignin; c++) if ((("mandate", SCASES[c], 1) in HAVE) || (("oidc-provider", SCASES[c], 1) in HAVE)) any = 1
    if (!any) return
    print "### Sign-in (issue 22): Mandate and oidc-provider, the same cases"
    print ""
    print "Each server with one browser signed in: a live session and the consent remembered, so that the authorization request is answered with a code at once (no IdP round trip, no page). Mandate: SQLite store, audit trail fsync \"batch\", IdP the test backend tests/plugins/backend-fakeidp; oidc-provider: bench/peers/oidc-provider-signin.mjs, its records in a Map (an in-memory adapter written there: nothing written to disk; Mandate writes each code, its redemption, each refresh token's rotation and the audit record of each to SQLite and the trail). One public client, PKCE S256, ES256 JWT access tokens for one resource, a refresh token with every code, rotated on every use. Codes: made ahead by the same authorization request (as many as a run of the same length makes), each redeemed once; refresh: the tokens those redemptions gave, each used once, each answer's rotated token used next."
    print ""
    if ("signin_loadavg" in F) printf "Load average (1, 5, 15 min) as these cases began: %s, on %s cores.\n\n", F["signin_loadavg"], substr(F["machine"], 1, index(F["machine"], " ") - 1)
    print "| case | -c | Mandate per s | p50 ms | p99 ms | CPU per request | non-2xx | oidc-provider per s | p50 ms | p99 ms | CPU per request | non-2xx | Mandate ÷ oidc-provider |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (c = 1; c <= nsignin; c++) {
        cs = SCASES[c]
        for (i = 1; i <= nsweep; i++) {
            conns = SWEEPS[i]
            m = get("mandate", cs, 1, conns, "rps"); o = get("oidc-provider", cs, 1, conns, "rps")
            if (m == "" && o == "") continue
            mc = get("mandate", cs, 1, conns, "cpu"); oc = get("oidc-provider", cs, 1, conns, "cpu")
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", label(cs), conns,
                commas(m), ms(get("mandate", cs, 1, conns, "p50")), ms(get("mandate", cs, 1, conns, "p99")),
                (mc == "" || mc == "-" ? "-" : mc " µs"),
                (m == "" ? "-" : get("mandate", cs, 1, conns, "non200") + get("mandate", cs, 1, conns, "errors")),
                commas(o), ms(get("oidc-provider", cs, 1, conns, "p50")), ms(get("oidc-provider", cs, 1, conns, "p99")),
                (oc == "" || oc == "-" ? "-" : oc " µs"),
                (o == "" ? "-" : get("oidc-provider", cs, 1, conns, "non200") + get("oidc-provider", cs, 1, conns, "errors")),
                ratio(m, o)
        }
    }
    print ""
    for (i = 1; i <= nsweep; i++) {
        conns = SWEEPS[i]
        if (("signin_codes.mandate." conns) in F || ("signin_codes.oidc-provider." conns) in F)
            printf "- -c%s: codes made ahead: Mandate %s, oidc-provider %s; refresh tokens they gave: Mandate %s, oidc-provider %s\n", conns,
                commas(F["signin_codes.mandate." conns]), commas(F["signin_codes.oidc-provider." conns]),
                commas(F["signin_refresh_tokens.mandate." conns]), commas(F["signin_refresh_tokens.oidc-provider." conns])
    }
    print ""
}

function everything_else(    i, r, p, c, s, cs, n, conns, rps, pr, sr, cpu, a, b) {
    # ceilings
    print "### Ceilings"
    print ""
    print "| ceiling | " (nconns > 1 ? "value" : "value") " |"
    print "|---|---|"
    printf "| `openssl speed ecdsap256`, signs/s, one core | %s |\n", commas(F["speed.ES256"])
    printf "| `openssl speed ed25519`, signs/s, one core | %s |\n", commas(F["speed.EdDSA"])
    printf "| `openssl speed rsa2048`, signs/s, one core | %s |\n", commas(F["speed.RS256"])
    for (i = 1; i <= nconns; i++)
        if (get("nginx", "static", 0, CONNS[i], "rps") != "")
            printf "| nginx, static 200-byte JSON, requests/s at -c%s | %s |\n", CONNS[i], commas(get("nginx", "static", 0, CONNS[i], "rps"))
    if (get("nginx", "static", 0, 1, "rps") != "" && index(" " sweep " ", " 1 ") == 0)
        printf "| nginx, static 200-byte JSON, requests/s at -c1 | %s |\n", commas(get("nginx", "static", 0, 1, "rps"))
    print ""

    # throughput overview
    print "### Throughput (requests/s) against concurrency"
    print ""
    printf "| server | case | clients |"
    for (i = 1; i <= nconns; i++) printf " -c%s |", CONNS[i]
    printf "\n|---|---|---|"
    for (i = 1; i <= nconns; i++) printf "---|"
    print ""
    for (r = 1; r <= nrows; r++) {
        split(ROWS[r], p, SUBSEP)
        if (p[2] ~ /^(audit-|ab[0-9]+-|signin-)/) continue
        printf "| %s | %s | %s |", p[1], label(p[2]), (p[1] == "mandate" ? commas(p[3]) : "1")
        for (i = 1; i <= nconns; i++) printf " %s |", commas(get(p[1], p[2], p[3], CONNS[i], "rps"))
        print ""
    }
    printf "\n![throughput against concurrency](%s)\n\n", png

    # Mandate, each point, with its ratios
    print "### Mandate, each point, as ratios to oidc-provider and to the ceilings of this run"
    print ""
    print "Peer: oidc-provider's same case (for the gateway check: its introspection; token exchange has no peer here). `÷ nginx`: to the static file at the same concurrency. `÷ sign`: to one core's `openssl speed` sign rate of the token's algorithm."
    print ""
    print "| case | clients | -c | per s | p50 ms | p99 ms | p99.9 ms | CPU per request | non-2xx | ÷ oidc-provider | ÷ nginx | ÷ sign (1 core) |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (c = 1; c <= ncase; c++) for (s = 1; s <= nscales; s++) {
        cs = MCASES[c]; n = SCALES[s]
        if (!(("mandate", cs, n) in HAVE)) continue
        for (i = 0; i <= nconns; i++) {
            conns = (i == 0) ? 1 : CONNS[i]
            if (i == 0 && index(" " sweep " ", " 1 ") > 0) continue
            rps = get("mandate", cs, n, conns, "rps")
            if (rps == "") continue
            pr = (cs in PEER) ? get("oidc-provider", PEER[cs], 1, conns, "rps") : ""
            sr = (cs in ALG) ? F["speed." ALG[cs]] : ""
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", label(cs), commas(n), conns, commas(rps),
                get("mandate", cs, n, conns, "p50"), get("mandate", cs, n, conns, "p99"), get("mandate", cs, n, conns, "p999"),
                (get("mandate", cs, n, conns, "cpu") == "-" ? "-" : get("mandate", cs, n, conns, "cpu") " µs"),
                get("mandate", cs, n, conns, "non200") + get("mandate", cs, n, conns, "errors"),
                ratio(rps, pr), ratio(rps, get("nginx", "static", 0, conns, "rps")), ratio(rps, sr)
        }
    }
    print ""

    # peers, each point
    print "### Peers and ceiling, each point"
    print ""
    print "oidc-provider 9 as its documentation sets it up for machine clients: JWT access tokens through `features.resourceIndicators` (`accessTokenFormat: \"jwt\"`), opaque tokens and their introspection kept by its development in-memory adapter (an LRU of 1,000 entries: nothing written to disk; Mandate writes each opaque token's record to SQLite), one client. glewlwyd 2.7.5: its oidc plugin, ES256, SQLite (each token recorded in its database), one client."
    print ""
    print "| server | case | -c | per s | p50 ms | p99 ms | p99.9 ms | CPU per request | non-2xx or socket errors |"
    print "|---|---|---|---|---|---|---|---|---|"
    for (r = 1; r <= nrows; r++) {
        split(ROWS[r], p, SUBSEP)
        if (p[1] == "mandate" || p[2] ~ /^signin-/) continue
        for (i = 0; i <= nconns; i++) {
            conns = (i == 0) ? 1 : CONNS[i]
            if (i == 0 && index(" " sweep " ", " 1 ") > 0) continue
            rps = get(p[1], p[2], p[3], conns, "rps")
            if (rps == "") continue
            cpu = get(p[1], p[2], p[3], conns, "cpu")
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p[1], label(p[2]), conns, commas(rps),
                get(p[1], p[2], p[3], conns, "p50"), get(p[1], p[2], p[3], conns, "p99"), get(p[1], p[2], p[3], conns, "p999"),
                (cpu == "-" ? "-" : cpu " µs"), get(p[1], p[2], p[3], conns, "non200") + get(p[1], p[2], p[3], conns, "errors")
        }
    }
    print ""

    # memory and start
    print "### Resident memory and start to ready"
    print ""
    print "Start to ready: from the fork to the first 200 of /readyz (Mandate: its first start after the import, and a restart later), of the OpenID discovery document (oidc-provider; glewlwyd, its plugin loaded, on its configured database), of the static file (nginx); polled every 0.5 ms by bench/ready.c. RSS: VmRSS (nginx: master and workers), idle after start, and the peak sampled every 0.2 s during all of that server's runs."
    print ""
    print "| server | clients | start to ready ms | RSS idle MiB | RSS under load (peak) MiB |"
    print "|---|---|---|---|---|"
    for (s = 1; s <= nscales; s++) {
        n = SCALES[s]
        if (!(("ready.mandate." n) in F)) continue
        printf "| Mandate | %s | %s%s | %s | %s |\n", commas(n), F["ready.mandate." n],
            (("ready_restart.mandate." n) in F ? " (restart: " F["ready_restart.mandate." n] ")" : ""),
            mib(F["rss_idle.mandate." n]), mib(PEAK["mandate" SUBSEP n])
    }
    split("oidc-provider glewlwyd nginx", PS, " ")
    for (i = 1; i <= 3; i++) if (("ready." PS[i]) in F)
        printf "| %s | 1 | %s | %s | %s |\n", PS[i], F["ready." PS[i]], mib(F["rss_idle." PS[i]]), mib(PEAK[PS[i]])
    print ""
    if (nscales > 1 && get("mandate", "cc-es256", s2, goalc, "rps") != "") {
        print "### From " commas(s1) " to " commas(s2) " clients, the sweep's points (at -c" goalc ", minutes apart)"
        print ""
        print "| case | per s, " commas(s1) " clients | per s, " commas(s2) " clients | change |"
        print "|---|---|---|---|"
        for (c = 1; c <= ncase; c++) {
            cs = MCASES[c]
            a = get("mandate", cs, s1, goalc, "rps"); b = get("mandate", cs, s2, goalc, "rps")
            if (a == "" || b == "") continue
            printf "| %s | %s | %s | %+.1f %% |\n", label(cs), commas(a), commas(b), (b - a) * 100 / a
        }
        print ""
    }
    if (nscales > 1 && F["ab_reps"] > 0) {
        print "### From " commas(s1) " to " commas(s2) " clients, interleaved (at -c" goalc ")"
        print ""
        print "Both daemons at once, each case alternating between them: " F["ab_reps"] " run(s) at each scale, seconds apart; the goal is judged on the medians."
        print ""
        print "| case | runs, " commas(s1) " clients | runs, " commas(s2) " clients | median, " commas(s1) " | median, " commas(s2) " | change |"
        print "|---|---|---|---|---|---|"
        for (c = 1; c <= ncase; c++) {
            cs = MCASES[c]
            a = ab_median(cs, s1); b = ab_median(cs, s2)
            if (a == "" || b == "" || a + 0 == 0) continue
            printf "| %s | %s | %s | %s | %s | %+.1f %% |\n", label(cs), ab_list(cs, s1), ab_list(cs, s2), commas(a), commas(b), (b - a) * 100 / a
        }
        print ""
    }
    if (("mandate", "audit-off", s1) in HAVE) {
        print "### The audit trail: fsync \"off\" against \"batch\" (ES256 issuance, " commas(s1) " clients)"
        print ""
        print "| -c | per s, off | per s, batch | batch ÷ off | p99 ms, off | p99 ms, batch |"
        print "|---|---|---|---|---|---|"
        split("1 8 32 64 128 256", AC, " ")
        for (i = 1; i <= 6; i++) {
            a = get("mandate", "audit-off", s1, AC[i], "rps"); b = get("mandate", "audit-batch", s1, AC[i], "rps")
            if (a == "" || b == "") continue
            printf "| %s | %s | %s | %s | %s | %s |\n", AC[i], commas(a), commas(b), ratio(b, a),
                get("mandate", "audit-off", s1, AC[i], "p99"), get("mandate", "audit-batch", s1, AC[i], "p99")
        }
        print ""
    }

}

function goals(    g, es, ope, op, opp, ir, irp, mr, mr2, worst, wc, nab, c, a, b, d, i, wconn, cs, conns, m, o) {
    # the issue's goals
    print "### The issue's goals, in this run"
    print ""
    g = goalc
    es = get("mandate", "cc-es256", s1, g, "rps"); ope = get("oidc-provider", "cc-es256", 1, g, "rps")
    if (es != "" && ope != "") printf "- ES256 client credentials at least 7× oidc-provider (-c%s): %s (%s against %s/s, %s)\n", g, met(es + 0 >= 7 * ope), ratio(es, ope), commas(ope), commas(es)
    if (es != "" && F["speed.ES256"] > 0) printf "- ES256 client credentials at least 0.7× one core's `openssl speed` ES256 sign rate: %s (%s: %s against %s signs/s)\n", met(es + 0 >= 0.7 * F["speed.ES256"]), ratio(es, F["speed.ES256"]), commas(es), commas(F["speed.ES256"])
    op = get("mandate", "cc-opaque", s1, g, "rps"); opp = get("oidc-provider", "cc-opaque", 1, g, "rps")
    if (op != "") printf "- opaque tokens at least 40,000/s (-c%s): %s (%s/s; %s oidc-provider's %s/s, %s the nginx ceiling)\n", g, met(op + 0 >= 40000), commas(op), ratio(op, opp), commas(opp), ratio(op, get("nginx", "static", 0, g, "rps"))
    ir = get("mandate", "introspect", s1, g, "rps"); irp = get("oidc-provider", "introspect", 1, g, "rps")
    if (ir != "") printf "- introspection at least 40,000/s (-c%s): %s (%s/s; %s oidc-provider's %s/s, %s the nginx ceiling)\n", g, met(ir + 0 >= 40000), commas(ir), ratio(ir, irp), commas(irp), ratio(ir, get("nginx", "static", 0, g, "rps"))
    mr = PEAK["mandate" SUBSEP s1]; mr2 = PEAK["mandate" SUBSEP s2]
    if (mr != "" && PEAK["oidc-provider"] != "") printf "- RSS under load at most a tenth of oidc-provider's: %s (%s MiB with %s clients, %s MiB with %s; oidc-provider %s MiB: %s)\n", met(mr2 * 10 <= PEAK["oidc-provider"] && mr * 10 <= PEAK["oidc-provider"]), mib(mr), commas(s1), mib(mr2), commas(s2), mib(PEAK["oidc-provider"]), ratio(mr2 + 0 > mr + 0 ? mr2 : mr, PEAK["oidc-provider"])
    if (mr != "" && PEAK["glewlwyd"] != "") printf "- RSS under load below glewlwyd's: %s (%s and %s MiB against %s MiB: %s)\n", met(mr2 + 0 < PEAK["glewlwyd"] + 0 && mr + 0 < PEAK["glewlwyd"] + 0), mib(mr), mib(mr2), mib(PEAK["glewlwyd"]), ratio(mr2 + 0 > mr + 0 ? mr2 : mr, PEAK["glewlwyd"])
    if (("ready.mandate." s1) in F) printf "- start to ready under 20 ms with %s clients: %s (%s ms; oidc-provider %s ms, glewlwyd %s ms)\n", commas(s1), met(F["ready.mandate." s1] + 0 < 20), F["ready.mandate." s1], ms(F["ready.oidc-provider"]), ms(F["ready.glewlwyd"])
    if (nscales > 1 && ("ready.mandate." s2) in F) printf "- start to ready under 1 s with %s clients%s: %s (%s ms)\n", commas(s2), (s2 < 1000000 ? " (the goal is for 1,000,000)" : ""), met(F["ready.mandate." s2] + 0 < 1000), F["ready.mandate." s2]
    if (nscales > 1) {
        # judged on the interleaved medians where they exist; the sweep's
        # points, minutes apart, only where they do not (token exchange)
        worst = ""; wc = ""; nab = 0
        for (c = 1; c <= ncase; c++) {
            a = ab_median(MCASES[c], s1); b = ab_median(MCASES[c], s2)
            if (a != "" && b != "") nab++
            else { a = get("mandate", MCASES[c], s1, g, "rps"); b = get("mandate", MCASES[c], s2, g, "rps") }
            if (a == "" || b == "" || a + 0 == 0) continue
            d = (b - a) / a
            if (worst == "" || d < worst + 0) { worst = d; wc = MCASES[c] }
        }
        if (worst != "") printf "- at most 10%% throughput lost from %s to %s clients (-c%s, every case%s)%s: %s (worst: %s, %+.1f %%)\n", commas(s1), commas(s2), g, (nab > 0 ? "; interleaved medians where measured, else the sweep" : ""), (s2 < 1000000 ? " (the goal is for 1,000,000)" : ""), met(worst >= -0.10), label(wc), worst * 100
    }
    if (("mandate", "audit-off", s1) in HAVE) {
        worst = ""
        for (i = 1; i <= 6; i++) {
            a = get("mandate", "audit-off", s1, AC[i], "rps"); b = get("mandate", "audit-batch", s1, AC[i], "rps")
            if (a == "" || b == "" || a + 0 == 0) continue
            if (worst == "" || b / a < worst + 0) { worst = b / a; wconn = AC[i] }
        }
        if (worst != "") printf "- with the audit trail in \"batch\" mode, within 20%% of \"off\": %s (batch ÷ off at worst %s, at -c%s)\n", met(worst >= 0.8), ratio(worst, 1), wconn
    }
    for (c = 1; c <= nsignin; c++) {
        cs = SCASES[c]
        for (i = 1; i <= nsweep; i++) {
            conns = SWEEPS[i]
            m = get("mandate", cs, 1, conns, "rps"); o = get("oidc-provider", cs, 1, conns, "rps")
            if (m == "" || o == "") continue
            printf "- %s at least 3× oidc-provider (-c%s; issue 22): %s (%s: %s against %s/s)\n", label(cs), conns,
                met(m + 0 >= 3 * o), ratio(m, o), commas(m), commas(o)
        }
    }
    print ""
    if (only != "signin") plot()
}

function plot(    ns, S, T, i, j, p, v, nm) {
    # the plot's data: one column per series, one row per concurrency
    ns = 0
    S[++ns] = "mandate" SUBSEP "cc-es256" SUBSEP s1; T[ns] = "Mandate ES256, " commas(s1) " clients"
    if (nscales > 1) { S[++ns] = "mandate" SUBSEP "cc-es256" SUBSEP s2; T[ns] = "Mandate ES256, " commas(s2) " clients" }
    S[++ns] = "mandate" SUBSEP "cc-opaque" SUBSEP s1; T[ns] = "Mandate opaque"
    S[++ns] = "mandate" SUBSEP "introspect" SUBSEP s1; T[ns] = "Mandate introspection"
    S[++ns] = "mandate" SUBSEP "gateway" SUBSEP s1; T[ns] = "Mandate gateway check"
    S[++ns] = "oidc-provider" SUBSEP "cc-es256" SUBSEP 1; T[ns] = "oidc-provider ES256"
    S[++ns] = "oidc-provider" SUBSEP "cc-opaque" SUBSEP 1; T[ns] = "oidc-provider opaque"
    S[++ns] = "oidc-provider" SUBSEP "introspect" SUBSEP 1; T[ns] = "oidc-provider introspection"
    S[++ns] = "glewlwyd" SUBSEP "cc-es256-pbkdf2" SUBSEP 1; T[ns] = "glewlwyd ES256, as shipped"
    S[++ns] = "glewlwyd" SUBSEP "cc-es256-cheap" SUBSEP 1; T[ns] = "glewlwyd ES256, cheap hashing"
    S[++ns] = "nginx" SUBSEP "static" SUBSEP 0; T[ns] = "nginx static file (ceiling)"
    printf "conns" > datafile
    for (j = 1; j <= ns; j++) printf " \"%s\"", T[j] > datafile
    printf "\n" > datafile
    for (i = 1; i <= nconns; i++) {
        printf "%s", CONNS[i] > datafile
        for (j = 1; j <= ns; j++) {
            split(S[j], p, SUBSEP)
            v = get(p[1], p[2], p[3], CONNS[i], "rps")
            printf " %s", (v == "" || v + 0 <= 0 ? "-" : v) > datafile
        }
        printf "\n" > datafile
    }
    close(datafile)
    # its styles: Mandate's lines solid, the peers' dashed, the ceiling dotted
    nm = 0
    for (j = 1; j <= ns; j++) if (S[j] ~ /^mandate/) nm++
    printf "ncols = %d\nnmandate = %d\n", ns + 1, nm > (datafile ".gp")
    close(datafile ".gp")
}
