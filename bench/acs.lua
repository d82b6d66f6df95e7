-- wrk script: SAML sign-ins at the Assertion Consumer Service (issue 23),
-- run by bench/saml-acs. BENCH_ACS says which step:
--   harvest  GET BENCH_PATH (an authorization request that goes straight to
--            the IdP): each answer's Location (the AuthnRequest and its
--            RelayState) and login cookie go to BENCH_OUT.<thread>, a line
--            "LOCATION<TAB>COOKIE" each, until the thread has its share of
--            BENCH_N; the pending sign-ins the ACS step finishes.
--   post     POST BENCH_PATH (the ACS): SAMLResponse = BENCH_DIR/bench-i.b64
--            (standard base64, a signed assertion answering AuthnRequest i)
--            and RelayState with the login cookie of line i of
--            BENCH_DIR/pending.txt ("RELAYSTATE<TAB>COOKIE"), each once:
--            thread t of BENCH_THREADS sends i = t, t+T, ... and stops when
--            its share is used; the rate is then taken over the time until
--            the last thread ran out, not wrk's whole -d. A sign-in is
--            taken to Mandate's consent page (200); any other answer goes
--            to BENCH_DIR/not-consent.<thread>, a line each.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")
lib.busy_hooks()

local mode = os.getenv("BENCH_ACS") or "post"
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
local path = os.getenv("BENCH_PATH")
local function esc(s)
    return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
local function stop()
    if not t_end then t_end = lib.now() end
    wrk.thread:stop()
end

local out, want, got, bodies, cookies, next_index
function init(args)
    if mode == "harvest" then
        out = assert(io.open(os.getenv("BENCH_OUT") .. "." .. id, "w"))
        want = math.ceil(tonumber(os.getenv("BENCH_N")) / nthreads)
        got = 0
        return
    end
    local dir = os.getenv("BENCH_DIR")
    local n = tonumber(os.getenv("BENCH_N"))
    local pending = lib.lines(dir .. "/pending.txt")
    bodies, cookies = {}, {}
    for i = id, n - 1, nthreads do
        local f = assert(io.open(dir .. "/bench-" .. i .. ".b64", "r"))
        local b64 = f:read("*l")
        f:close()
        local relay, cookie = pending[i + 1]:match("^([^\t]*)\t(.*)$")
        bodies[#bodies + 1] = "SAMLResponse=" .. esc(b64) .. "&RelayState=" .. esc(relay)
        cookies[#cookies + 1] = cookie
    end
    next_index = 1
    -- a sign-in the ACS did not take to consent (200): its status, a line
    out = assert(io.open(dir .. "/not-consent." .. id, "w"))
end

if mode == "harvest" then
    wrk.method = "GET"
    wrk.path = path
    request = function()
        if not t_start then t_start = lib.now() end
        return wrk.format("GET", path)
    end
    response = function(status, headers, body)
        local loc = headers["Location"] or headers["location"]
        local cookie = (headers["Set-Cookie"] or headers["set-cookie"] or ""):match("^([^;]*)")
        if loc and cookie and got < want then
            out:write(loc, "\t", cookie, "\n")
            got = got + 1
            if got >= want then out:close(); stop() end
        end
    end
else
    local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
    request = function()
        if not t_start then t_start = lib.now() end
        local i = next_index
        if bodies[i] == nil then
            stop()
            i = 1
        end
        next_index = next_index + 1
        headers["Cookie"] = cookies[i]
        return wrk.format("POST", path, headers, bodies[i])
    end
    response = function(status, hdrs, body)
        if status ~= 200 then
            out:write(status, " ", hdrs["Location"] or hdrs["location"] or "", "\n")
            out:flush()
        end
    end
end
