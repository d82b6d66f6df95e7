-- wrk script for tests/soak/run: mixed traffic against one daemon. Run it
-- with as many threads as connections (wrk -t8 -c8): a thread then has one
-- connection, so each response answers the thread's last request() and is
-- counted under that request's kind.
--
-- Per 20 requests of a thread (a fixed cycle, started at a different place
-- in each thread):
--   4 client credentials (valid; every other token is set aside for revoke)
--   3 introspection of a valid token by the gateway client
--   3 gateway checks with a valid token
--   1 gateway check without a token                     (401 expected)
--   1 gateway check of a token for another audience     (401 expected)
--   2 revocations of tokens issued by this thread just before
--   2 token exchanges of a fresh SAML assertion, each used once and paced
--     over SOAK_SAML_SECONDS; when none is due (or none is left) the slot
--     becomes a client credentials request
--   4 bad requests, cycling through BAD below
--
-- Environment: SOAK_AGENT_BASIC, SOAK_GW_BASIC (base64 of id:secret),
-- SOAK_SAML_DIR, SOAK_SAML_N, SOAK_SAML_SECONDS, SOAK_THREADS, SOAK_RESULT
-- (the file done() writes its counts to).

local threads = {}
local counter = 0

function setup(thread)
    thread:set("id", counter)
    table.insert(threads, thread)
    counter = counter + 1
end

local FORM = "application/x-www-form-urlencoded"
local XCHG = "urn:ietf:params:oauth:grant-type:token-exchange"
local SAML2 = "urn:ietf:params:oauth:token-type:saml2"

local CYCLE = {
    "cc", "introspect", "gw-valid", "bad", "revoke",
    "cc", "saml", "gw-missing", "introspect", "bad",
    "gw-valid", "cc", "revoke", "bad", "gw-wrong-aud",
    "introspect", "cc", "saml", "gw-valid", "bad",
}

-- bad requests: a name and a function returning the request
local big = string.rep("A", 70000) -- over the default body_limit (64 KiB)
local BAD = {
    { "bad-form", function()
        return wrk.format("POST", "/oauth2/token", { ["Content-Type"] = FORM, ["Authorization"] = "Basic " .. agent },
            "grant_type=client_credentials&scope=%zz%&&==&%%%&grant_type")
    end },
    { "bad-secret", function()
        return wrk.format("POST", "/oauth2/token", { ["Content-Type"] = FORM, ["Authorization"] = "Basic " .. bad_basic },
            "grant_type=client_credentials&scope=mcp:call")
    end },
    { "bad-grant", function()
        return wrk.format("POST", "/oauth2/token", { ["Content-Type"] = FORM, ["Authorization"] = "Basic " .. agent },
            "grant_type=password&username=alice&password=secret")
    end },
    { "bad-bearer", function()
        return wrk.format("GET", "/gateway/check", { ["Authorization"] = "Bearer " .. garbage_token(),
            ["X-Original-URI"] = "/mcp" })
    end },
    { "bad-oversized", function()
        return wrk.format("POST", "/oauth2/token", { ["Content-Type"] = FORM, ["Authorization"] = "Basic " .. agent },
            "grant_type=client_credentials&scope=" .. big)
    end },
    { "bad-content-type", function()
        return wrk.format("POST", "/oauth2/token", { ["Content-Type"] = "text/plain", ["Authorization"] = "Basic " .. agent },
            "grant_type=client_credentials&scope=mcp:call")
    end },
    { "bad-json", function()
        return wrk.format("POST", "/oauth2/token", { ["Content-Type"] = "application/json", ["Authorization"] = "Basic " .. agent },
            '{"grant_type":"client_credentials","scope":"mcp:call"}')
    end },
    { "bad-introspect", function()
        return wrk.format("POST", "/oauth2/introspect", { ["Content-Type"] = FORM, ["Authorization"] = "Basic " .. gw },
            "token=" .. garbage_token())
    end },
    { "bad-basic", function()
        return wrk.format("POST", "/oauth2/token", { ["Content-Type"] = FORM, ["Authorization"] = "Basic %%%not-base64" },
            "grant_type=client_credentials")
    end },
    { "bad-saml", function()
        return wrk.format("POST", "/oauth2/token", { ["Content-Type"] = FORM, ["Authorization"] = "Basic " .. agent },
            "grant_type=" .. XCHG .. "&subject_token_type=" .. SAML2 .. "&subject_token=PHNhbWw6QXNzZXJ0aW9uPjwvc2FtbA")
    end },
}

-- a JWT-shaped or shapeless string of random bytes
function garbage_token()
    local n = math.random(1, 300)
    local t = {}
    for i = 1, n do
        t[i] = string.char(math.random(33, 126))
    end
    local s = table.concat(t):gsub("[%%&+=\"\\]", "x")
    if math.random(2) == 1 then
        s = "eyJhbGciOiJFUzI1NiJ9." .. s .. ".c2ln"
    end
    return s
end

function init(args)
    agent = os.getenv("SOAK_AGENT_BASIC")
    gw = os.getenv("SOAK_GW_BASIC")
    bad_basic = os.getenv("SOAK_BAD_BASIC")
    local dir = os.getenv("SOAK_SAML_DIR")
    local n = tonumber(os.getenv("SOAK_SAML_N") or "0")
    local nthreads = tonumber(os.getenv("SOAK_THREADS") or "1")
    local seconds = tonumber(os.getenv("SOAK_SAML_SECONDS") or "60")
    math.randomseed(os.time() + id * 7919)
    assertions = {}
    for i = id, n - 1, nthreads do
        local f = io.open(dir .. "/bench-" .. i .. ".b64", "r")
        if f then
            table.insert(assertions, f:read("*l"))
            f:close()
        end
    end
    saml_rate = #assertions / seconds -- per second, for this thread
    saml_used = 0
    started = os.time()
    slot = (id * 7) % #CYCLE
    bad_slot = id % #BAD
    current = nil      -- a valid token for introspection and the gateway
    to_revoke = {}     -- tokens issued to be revoked
    issued = 0
    last_kind = nil
    sent = {}
    counts = {}        -- "kind status" -> n
end

local function next_kind()
    slot = slot % #CYCLE + 1
    local k = CYCLE[slot]
    if k == "saml" then
        local due = (os.time() - started + 1) * saml_rate
        if saml_used >= #assertions or saml_used >= due then
            k = "cc"
        end
    elseif k == "revoke" and #to_revoke == 0 then
        k = "cc"
    elseif (k == "introspect" or k == "gw-valid" or k == "gw-wrong-aud") and current == nil then
        k = "cc"
    end
    return k
end

function request()
    local k = next_kind()
    local req
    if k == "cc" then
        req = wrk.format("POST", "/oauth2/token", { ["Content-Type"] = FORM, ["Authorization"] = "Basic " .. agent },
            "grant_type=client_credentials&scope=mcp:call")
    elseif k == "introspect" then
        req = wrk.format("POST", "/oauth2/introspect", { ["Content-Type"] = FORM, ["Authorization"] = "Basic " .. gw },
            "token=" .. current)
    elseif k == "gw-valid" then
        req = wrk.format("GET", "/gateway/check", { ["Authorization"] = "Bearer " .. current, ["X-Original-URI"] = "/mcp" })
    elseif k == "gw-missing" then
        req = wrk.format("GET", "/gateway/check", { ["X-Original-URI"] = "/mcp" })
    elseif k == "gw-wrong-aud" then
        req = wrk.format("GET", "/gateway/check", { ["Authorization"] = "Bearer " .. current, ["X-Original-URI"] = "/news/today" })
    elseif k == "revoke" then
        local t = table.remove(to_revoke, 1)
        req = wrk.format("POST", "/oauth2/revoke", { ["Content-Type"] = FORM, ["Authorization"] = "Basic " .. agent },
            "token=" .. t)
    elseif k == "saml" then
        saml_used = saml_used + 1
        req = wrk.format("POST", "/oauth2/token", { ["Content-Type"] = FORM, ["Authorization"] = "Basic " .. agent },
            "grant_type=" .. XCHG .. "&subject_token_type=" .. SAML2 .. "&subject_token=" .. assertions[saml_used])
    else -- bad
        bad_slot = bad_slot % #BAD + 1
        k = BAD[bad_slot][1]
        req = BAD[bad_slot][2]()
    end
    last_kind = k
    sent[k] = (sent[k] or 0) + 1
    return req
end

function response(status, headers, body)
    local k = last_kind or "unknown"
    -- introspection answers 200 either way: what it says is what counts
    if status == 200 and (k == "introspect" or k == "bad-introspect") then
        local active = body:find('"active":true', 1, true) ~= nil
        if active ~= (k == "introspect") then k = k .. (active and "-active" or "-inactive") end
    end
    local key = k .. " " .. status
    counts[key] = (counts[key] or 0) + 1
    if k == "cc" and status == 200 then
        local t = body:match('"access_token":"([^"]+)"')
        if t then
            issued = issued + 1
            if issued % 2 == 0 then
                if #to_revoke < 64 then table.insert(to_revoke, t) end
            elseif current == nil or issued % 32 == 1 then
                current = t -- a token lives on for a while, as an agent's would
            end
        end
    end
    last_kind = nil
end

done = function(summary, latency, requests)
    local total_sent, total_counts = {}, {}
    for _, t in ipairs(threads) do
        for k, v in pairs(t:get("sent")) do total_sent[k] = (total_sent[k] or 0) + v end
        for k, v in pairs(t:get("counts")) do total_counts[k] = (total_counts[k] or 0) + v end
    end
    local f = io.open(os.getenv("SOAK_RESULT"), "w")
    for k, v in pairs(total_sent) do f:write(string.format("sent %s %d\n", k, v)) end
    for k, v in pairs(total_counts) do f:write(string.format("status %s %d\n", k, v)) end
    local e = summary.errors
    f:write(string.format("wrk requests=%d seconds=%.1f connect=%d read=%d write=%d timeout=%d p99_ms=%.1f\n",
        summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.timeout,
        latency:percentile(99) / 1000))
    f:close()
end
