-- Shared by the wrk scripts of bench/: reading a file of lines (credentials,
-- tokens), a per-thread starting point so that the threads spread over those
-- lines, and the RESULT line bench/run and bench/stores read:
--   RESULT requests=N non200=N errors=N seconds=S rps=R p50_ms=.. p99_ms=.. p999_ms=..
-- rps counts the answers with a status below 400 (wrk's status errors are
-- those of 400 and above); errors are sockets that failed or timed out.
local lib = {}

function lib.lines(path)
    local t = {}
    local f = assert(io.open(path, "r"), "cannot open " .. path)
    for line in f:lines() do
        if line ~= "" then t[#t + 1] = line end
    end
    f:close()
    assert(#t > 0, path .. " is empty")
    return t
end

-- setup for wrk: each thread gets the global `id` (0, 1, ...)
local counter = 0
function lib.setup(thread)
    thread:set("id", counter)
    counter = counter + 1
end

-- where thread `tid` starts in a list of n: spread evenly over the
-- BENCH_THREADS (default 2) threads
function lib.start(tid, n)
    local threads = tonumber(os.getenv("BENCH_THREADS") or "2")
    return (math.floor(n * (tid or 0) / threads)) % n + 1
end

-- the items of list (a table, or a file's path: lib.lines) taken in turn, one
-- a call, from thread tid's starting point (lib.start); call it in init, where
-- wrk has set the thread's `id`
function lib.cycle(list, tid)
    if type(list) == "string" then list = lib.lines(list) end
    local n = #list
    local i = lib.start(tid, n)
    return function()
        local item = list[i]
        i = i % n + 1
        return item
    end
end

-- the wrk hooks of a script that needs nothing more of them: setup (the
-- thread's `id`) and done (the RESULT line); they are wrk's globals
function lib.hooks()
    setup = lib.setup
    done = function(summary, latency, requests) lib.done(summary, latency) end
end

-- the wrk hooks of a script whose threads may stop before wrk's -d (each
-- thread sets its globals t_start when it begins and t_end when it stops):
-- the rate is then taken over the time until the last one stopped, unless
-- one ran to the end (wrk's -d)
function lib.busy_hooks()
    local threads = {}
    setup = function(thread)
        lib.setup(thread)
        table.insert(threads, thread)
    end
    done = function(summary, latency, requests)
        local busy = 0
        for _, t in ipairs(threads) do
            local t0, t1 = t:get("t_start"), t:get("t_end")
            if t0 and t1 and t1 - t0 > busy then busy = t1 - t0 end
            if t0 and not t1 then busy = 0; break end
        end
        lib.done(summary, latency, busy)
    end
end

-- with path (a file of lines: tokens, credentials), sets wrk's init and
-- request so that each request is make(line) for the file's lines in turn
-- (lib.cycle, from the thread's starting point); without it, neither: wrk
-- sends the one request the script set up in wrk.*
function lib.each_line(path, make)
    if not path then return end
    local next_line
    init = function(args) next_line = lib.cycle(path, id) end
    request = function() return make(next_line()) end
end

-- sets wrk's response hook to write the access tokens of 200 answers to
-- path (a string, or a function called in the thread that gives one), one a
-- line, and to stop the thread after want of them
function lib.harvest(path, want)
    local out, got
    response = function(status, headers, body)
        if not out then
            out = assert(io.open(type(path) == "function" and path() or path, "w"))
            got = 0
        end
        local t = status == 200 and body:match('"access_token"%s*:%s*"([^"]+)"')
        if t and got < want then
            out:write(t, "\n")
            got = got + 1
            if got >= want then out:close(); wrk.thread:stop() end
        end
    end
end

-- wall-clock seconds (for a script whose threads may stop before the end)
function lib.now()
    local p = io.popen("date +%s.%N")
    local t = tonumber(p:read("*l"))
    p:close()
    return t
end

-- seconds: the time the load really lasted, when shorter than wrk's -d
function lib.done(summary, latency, seconds)
    local e = summary.errors
    local sockets = e.connect + e.read + e.write + e.timeout
    local secs = summary.duration / 1e6
    if seconds and seconds > 0 and seconds < secs then secs = seconds end
    io.write(string.format(
        "RESULT requests=%d non200=%d errors=%d seconds=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f\n",
        summary.requests, e.status, sockets, secs, (summary.requests - e.status) / secs,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        latency:percentile(99.9) / 1000))
end

return lib
