-- wrk script: the gateway check as nginx auth_request asks it. The tokens:
-- BENCH_TOKENS, a file of tokens (one a line, from many clients), presented
-- in turn; else the one BENCH_TOKEN.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")
lib.hooks()

wrk.method = "GET"
wrk.path = "/gateway/check"
wrk.headers["X-Original-URI"] = "/mcp"
local tokens_file = os.getenv("BENCH_TOKENS")
if not tokens_file then wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN") end

local headers = { ["X-Original-URI"] = "/mcp" }
lib.each_line(tokens_file, function(token)
    headers["Authorization"] = "Bearer " .. token
    return wrk.format(nil, nil, headers)
end)
