-- wrk script: RFC 8693 token exchanges of an upstream OpenID Provider's
-- id_tokens (subject_token_type id_token). BENCH_IDTOKENS: a file of
-- id_tokens, one a line, used in turn; the acting client: BENCH_CREDS, a
-- file of Authorization header values used in turn.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")
setup = lib.setup
done = function(summary, latency, requests) lib.done(summary, latency) end

local tokens, nt, ti, creds, nc, ci
function init(args)
    tokens = lib.lines(os.getenv("BENCH_IDTOKENS"))
    creds = lib.lines(os.getenv("BENCH_CREDS"))
    nt, nc = #tokens, #creds
    ti, ci = lib.start(id, nt), lib.start(id, nc)
end

local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
function request()
    local t = tokens[ti]
    ti = ti % nt + 1
    headers["Authorization"] = creds[ci]
    ci = ci % nc + 1
    return wrk.format("POST", "/oauth2/token", headers,
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange" ..
        "&subject_token_type=urn:ietf:params:oauth:token-type:id_token&subject_token=" .. t)
end
