-- wrk script: the gateway check as nginx auth_request asks it. The tokens:
-- BENCH_TOKENS, a file of tokens (one a line, from many clients), presented
-- in turn; else the one BENCH_TOKEN.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")
setup = lib.setup
done = function(summary, latency, requests) lib.done(summary, latency) end

wrk.method = "GET"
wrk.path = "/gateway/check"
wrk.headers["X-Original-URI"] = "/mcp"
local tokens_file = os.getenv("BENCH_TOKENS")
if not tokens_file then wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN") end

local next_token
function init(args)
    if tokens_file then next_token = lib.cycle(tokens_file, id) end
end

if tokens_file then
    local headers = { ["X-Original-URI"] = "/mcp" }
    request = function()
        headers["Authorization"] = "Bearer " .. next_token()
        return wrk.format(nil, nil, headers)
    end
end
