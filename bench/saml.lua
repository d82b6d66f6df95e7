-- wrk script: RFC 8693 token exchanges of SAML assertions, each assertion
-- once (fresh IDs: a replay would be refused). BENCH_SAML_DIR holds
-- bench-0.b64 .. bench-(N-1).b64; BENCH_SAML_N is N; BENCH_SAML_FIRST
-- (default 0) the first to use. The acting client: BENCH_CREDS, a file of
-- Authorization header values used in turn, else the Basic credentials
-- BENCH_AGENT_BASIC. Thread t of BENCH_THREADS (default 2) sends t, t+T,
-- t+2T, ... and stops when its share is used up; the rate is then taken over
-- the time until the last thread ran out, not wrk's whole -d.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")
lib.busy_hooks()

local assertions, next_index, next_creds
function init(args)
    local dir = os.getenv("BENCH_SAML_DIR")
    local n = tonumber(os.getenv("BENCH_SAML_N"))
    local first = tonumber(os.getenv("BENCH_SAML_FIRST") or "0")
    local step = tonumber(os.getenv("BENCH_THREADS") or "2")
    assertions = {}
    for i = first + id, first + n - 1, step do
        local f = io.open(dir .. "/bench-" .. i .. ".b64", "r")
        table.insert(assertions, f:read("*l"))
        f:close()
    end
    next_index = 1
    local creds = os.getenv("BENCH_CREDS") or { "Basic " .. os.getenv("BENCH_AGENT_BASIC") }
    next_creds = lib.cycle(creds, id)
end

local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
function request()
    if not t_start then t_start = lib.now() end
    local a = assertions[next_index]
    if a == nil then
        if not t_end then t_end = lib.now() end
        wrk.thread:stop()
        a = assertions[1]
    end
    next_index = next_index + 1
    headers["Authorization"] = next_creds()
    return wrk.format("POST", "/oauth2/token", headers,
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange" ..
        "&subject_token_type=urn:ietf:params:oauth:token-type:saml2&subject_token=" .. a)
end
