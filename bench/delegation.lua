-- wrk script: token exchanges (RFC 8693) of our own access tokens by an
-- acting client (issue 26), for bench/delegation.
-- BENCH_BASIC: the actor's Authorization header value ("Basic ...").
-- BENCH_SUBJECT: the subject token, the same for every request; or
-- BENCH_SUBJECTS: a file of them, one a line, exchanged in turn.
-- With BENCH_TOKENS_OUT, each thread writes the tokens it receives to
-- BENCH_TOKENS_OUT.<thread id>, one a line, and stops after BENCH_HARVEST
-- (default 1000) divided among the BENCH_THREADS (default 2) threads.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")
lib.hooks()

local prefix = "grant_type=urn:ietf:params:oauth:grant-type:token-exchange" ..
    "&subject_token_type=urn:ietf:params:oauth:token-type:access_token&subject_token="
local headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = os.getenv("BENCH_BASIC"),
}
wrk.method = "POST"
wrk.path = "/oauth2/token"
wrk.body = prefix .. (os.getenv("BENCH_SUBJECT") or "")
for k, v in pairs(headers) do wrk.headers[k] = v end

-- our tokens are base64url and dots: nothing to escape in the form
lib.each_line(os.getenv("BENCH_SUBJECTS"), function(token)
    return wrk.format(nil, nil, headers, prefix .. token)
end)

local out_path = os.getenv("BENCH_TOKENS_OUT")
if out_path then
    local threads = tonumber(os.getenv("BENCH_THREADS") or "2")
    lib.harvest(function() return out_path .. "." .. id end,
                math.ceil(tonumber(os.getenv("BENCH_HARVEST") or "1000") / threads))
end
