-- wrk script: the sign-in cases (issue 22), for Mandate and for
-- oidc-provider alike; BENCH_SIGNIN says which:
--   authorize  GET BENCH_PATH (the authorization request, its query
--              included) with the browser's session cookie BENCH_COOKIE (a
--              live session, the consent remembered): answered by a redirect
--              with a code. With BENCH_CODES_OUT, the codes are written to
--              BENCH_CODES_OUT.<thread> and each thread stops after its share
--              of BENCH_HARVEST (codes made ahead for the next case).
--   code       POST BENCH_PATH: grant_type=authorization_code, one code of
--              BENCH_CODES per request (thread t of BENCH_THREADS sends lines
--              t, t+T, ...; a code is single-use), with BENCH_VERIFIER,
--              BENCH_REDIRECT, BENCH_CLIENT_ID, BENCH_RESOURCE. With
--              BENCH_REFRESH_OUT, the refresh tokens received are written to
--              BENCH_REFRESH_OUT.<thread>.
--   refresh    POST BENCH_PATH: grant_type=refresh_token. Each thread starts
--              with its share of the tokens of BENCH_REFRESH and sends each
--              once; the rotated token of each answer joins its queue (a
--              used one would be a reuse, which ends its family).
-- A thread that runs out of codes or tokens stops; the rate is then taken
-- over the time until the last one stopped, not wrk's whole -d.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")
lib.busy_hooks()

local mode = os.getenv("BENCH_SIGNIN") or "authorize"
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
local function esc(s)
    return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
local form = "&client_id=" .. esc(os.getenv("BENCH_CLIENT_ID") or "mcp-app")
if os.getenv("BENCH_RESOURCE") then form = form .. "&resource=" .. esc(os.getenv("BENCH_RESOURCE")) end
local path = os.getenv("BENCH_PATH")
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

-- the thread's share of a file's lines
local function share(file)
    local t, i = {}, 0
    for line in io.lines(file) do
        if line ~= "" then
            if i % nthreads == id then t[#t + 1] = line end
            i = i + 1
        end
    end
    return t
end

local queue, head, tail, out, want, got
if mode == "authorize" then
    wrk.method = "GET"
    wrk.path = path
    wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
end
function init(args)
    if mode == "authorize" then
        local o = os.getenv("BENCH_CODES_OUT")
        if o then
            out = assert(io.open(o .. "." .. id, "w"))
            want = math.ceil(tonumber(os.getenv("BENCH_HARVEST") or "1000") / nthreads)
            got = 0
        end
    elseif mode == "code" then
        form = form .. "&code_verifier=" .. esc(os.getenv("BENCH_VERIFIER")) ..
            "&redirect_uri=" .. esc(os.getenv("BENCH_REDIRECT"))
        queue = share(os.getenv("BENCH_CODES"))
        local o = os.getenv("BENCH_REFRESH_OUT")
        if o then out = assert(io.open(o .. "." .. id, "w")) end
    else
        queue = share(os.getenv("BENCH_REFRESH"))
    end
    head, tail = 1, queue and #queue or 0
end

local function stop()
    if not t_end then t_end = lib.now() end
    wrk.thread:stop()
end

local function next_request()
    if not t_start then t_start = lib.now() end
    local item = queue[head]
    if item == nil then
        stop()
        item = "spent"
    else
        queue[head] = nil
        head = head + 1
    end
    if mode == "code" then
        return wrk.format("POST", path, headers, "grant_type=authorization_code&code=" .. item .. form)
    end
    return wrk.format("POST", path, headers, "grant_type=refresh_token&refresh_token=" .. esc(item) .. form)
end
if mode ~= "authorize" then request = next_request end

if mode == "authorize" and os.getenv("BENCH_CODES_OUT") then
    response = function(status, hdrs, body)
        local loc = hdrs["Location"] or hdrs["location"] or ""
        local code = loc:match("[?&]code=([^&]+)")
        if code and got < want then
            out:write(code, "\n")
            got = got + 1
            if got >= want then out:close(); stop() end
        end
    end
elseif mode == "code" and os.getenv("BENCH_REFRESH_OUT") then
    response = function(status, hdrs, body)
        local r = status == 200 and body:match('"refresh_token"%s*:%s*"([^"]+)"')
        if r then out:write(r, "\n") end
    end
elseif mode == "refresh" then
    response = function(status, hdrs, body)
        local r = status == 200 and body:match('"refresh_token"%s*:%s*"([^"]+)"')
        if r then
            tail = tail + 1
            queue[tail] = r
        end
    end
end
