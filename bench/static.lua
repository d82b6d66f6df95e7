-- wrk script: the HTTP ceiling, a GET of the static file nginx serves
-- (BENCH_PATH), with the RESULT line of the other scripts.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")
lib.hooks()
wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH") or "/bench.json"
