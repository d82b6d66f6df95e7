-- wrk script: RFC 8693 token exchanges of SAML assertions, each assertion
-- once (fresh IDs: a replay would be refused). BENCH_SAML_DIR holds
-- bench-0.b64 .. bench-(N-1).b64; BENCH_SAML_N is N; the agent's Basic
-- credentials are BENCH_AGENT_BASIC. Thread t sends t, t+T, t+2T, ... and
-- stops when its share is used up.
local threads = {}
local counter = 0

function setup(thread)
    thread:set("id", counter)
    table.insert(threads, thread)
    counter = counter + 1
end

function init(args)
    dir = os.getenv("BENCH_SAML_DIR")
    n = tonumber(os.getenv("BENCH_SAML_N"))
    step = tonumber(os.getenv("BENCH_THREADS") or "2")
    basic = os.getenv("BENCH_AGENT_BASIC")
    assertions = {}
    for i = id, n - 1, step do
        local f = io.open(dir .. "/bench-" .. i .. ".b64", "r")
        table.insert(assertions, f:read("*l"))
        f:close()
    end
    next_index = 1
    bad = 0
end

function request()
    local a = assertions[next_index]
    if a == nil then
        wrk.thread:stop()
        a = assertions[1]
    end
    next_index = next_index + 1
    return wrk.format("POST", "/oauth2/token", {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["Authorization"] = "Basic " .. basic,
    }, "grant_type=urn:ietf:params:oauth:grant-type:token-exchange" ..
       "&subject_token_type=urn:ietf:params:oauth:token-type:saml2&subject_token=" .. a)
end

function response(status, headers, body)
    if status ~= 200 then bad = bad + 1 end
end

done = function(summary, latency, requests)
    local non200 = 0
    for _, t in ipairs(threads) do non200 = non200 + t:get("bad") end
    io.write(string.format("RESULT requests=%d non200=%d seconds=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f\n",
        summary.requests, non200, summary.duration / 1e6,
        (summary.requests - non200) / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
