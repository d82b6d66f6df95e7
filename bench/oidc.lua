-- wrk script: RFC 8693 token exchanges of an upstream OpenID Provider's
-- id_tokens (subject_token_type id_token). BENCH_IDTOKENS: a file of
-- id_tokens, one a line, used in turn; the acting client: BENCH_CREDS, a
-- file of Authorization header values used in turn.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")
lib.hooks()

local next_token, next_creds
function init(args)
    next_token = lib.cycle(os.getenv("BENCH_IDTOKENS"), id)
    next_creds = lib.cycle(os.getenv("BENCH_CREDS"), id)
end

local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
function request()
    local t = next_token()
    headers["Authorization"] = next_creds()
    return wrk.format("POST", "/oauth2/token", headers,
        "grant_type=urn:ietf:params:oauth:grant-type:token-exchange" ..
        "&subject_token_type=urn:ietf:params:oauth:token-type:id_token&subject_token=" .. t)
end
