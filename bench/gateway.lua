-- wrk script: the gateway check as nginx auth_request asks it.
-- BENCH_TOKEN comes from the environment.
local token = os.getenv("BENCH_TOKEN")

wrk.method = "GET"
wrk.path = "/gateway/check"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["X-Original-URI"] = "/mcp"

done = function(summary, latency, requests)
    io.write(string.format("RESULT requests=%d seconds=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f\n",
        summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
