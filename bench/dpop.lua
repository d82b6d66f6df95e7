-- wrk script: DPoP beside bearer (issue 25), one request shape for both.
-- BENCH_CASE: "token" (POST /oauth2/token, client credentials,
-- BENCH_BASIC the client's Authorization) or "gateway" (GET /gateway/check
-- as nginx asks it, for X-Original-URI /mcp, with BENCH_TOKEN).
-- BENCH_PROOFS: a file of DPoP proofs made ahead (tests/dpop-proof proofs),
-- each sent once: with it the token request carries one and the gateway
-- check presents the token as "DPoP" with one; without it, bearer.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")
lib.hooks()

local case = os.getenv("BENCH_CASE") or "token"
local proofs = os.getenv("BENCH_PROOFS")
if proofs == "" then proofs = nil end
local headers = {}
if case == "token" then
    wrk.method = "POST"
    wrk.path = "/oauth2/token"
    wrk.body = "grant_type=client_credentials&scope=mcp:call"
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers["Authorization"] = os.getenv("BENCH_BASIC")
else
    wrk.method = "GET"
    wrk.path = "/gateway/check"
    headers["X-Original-URI"] = "/mcp"
    headers["X-Original-Method"] = "GET"
    headers["Authorization"] = (proofs and "DPoP " or "Bearer ") .. os.getenv("BENCH_TOKEN")
end
for k, v in pairs(headers) do wrk.headers[k] = v end

-- one proof a request, never twice while the pool lasts (the threads start
-- half the pool apart: a pool larger than the run's requests is never reused)
lib.each_line(proofs, function(proof)
    headers["DPoP"] = proof
    return wrk.format(nil, nil, headers)
end)
