-- wrk script: RFC 7662 introspection by a gateway client. The tokens:
-- BENCH_TOKENS, a file of tokens (one a line, from many clients), checked in
-- turn; else the one BENCH_TOKEN. BENCH_GW_BASIC: base64 of id:secret, made
-- by bench/run. BENCH_PATH: default /oauth2/introspect.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")
lib.hooks()

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/oauth2/introspect"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_GW_BASIC")
local tokens_file = os.getenv("BENCH_TOKENS")
if not tokens_file then wrk.body = "token=" .. os.getenv("BENCH_TOKEN") end

lib.each_line(tokens_file, function(token) return wrk.format(nil, nil, nil, "token=" .. token) end)
