-- wrk script: RFC 7662 introspection of one token by a gateway client.
-- BENCH_GW_BASIC and BENCH_TOKEN come from the environment.
local token = os.getenv("BENCH_TOKEN")
local basic = os.getenv("BENCH_GW_BASIC") -- base64 of id:secret, made by bench/run

wrk.method = "POST"
wrk.path = "/oauth2/introspect"
wrk.body = "token=" .. token
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. basic

done = function(summary, latency, requests)
    io.write(string.format("RESULT requests=%d seconds=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f\n",
        summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
