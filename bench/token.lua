-- wrk script: the client credentials grant with client_secret_basic.
-- Credentials: BENCH_CREDS, a file of Authorization header values ("Basic
-- ...", one a line, made by bench/run), used in turn so that the load
-- spreads over many clients (each request looks a client up); else one
-- client from BENCH_CLIENT_ID and BENCH_CLIENT_SECRET.
-- BENCH_SCOPE (default mcp:call), BENCH_EXTRA (more form fields, e.g.
-- "resource=..."), BENCH_PATH (default /oauth2/token).
-- With BENCH_TOKENS_OUT, the access tokens received are written there, one a
-- line (use -t1), and the run stops after BENCH_HARVEST (default 1000).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")
lib.hooks()

local scope = os.getenv("BENCH_SCOPE") or "mcp:call"
local extra = os.getenv("BENCH_EXTRA")
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/oauth2/token"
wrk.body = "grant_type=client_credentials&scope=" .. scope .. (extra and ("&" .. extra) or "")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function base64(data)
    return ((data:gsub('.', function(x)
        local r, b = '', x:byte()
        for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
        return r
    end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
        if #x < 6 then return '' end
        local c = 0
        for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
        return b64chars:sub(c + 1, c + 1)
    end) .. ({ '', '==', '=' })[#data % 3 + 1])
end

local creds_file = os.getenv("BENCH_CREDS")
if not creds_file then
    wrk.headers["Authorization"] = "Basic " ..
        base64(os.getenv("BENCH_CLIENT_ID") .. ":" .. os.getenv("BENCH_CLIENT_SECRET"))
end

local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
lib.each_line(creds_file, function(creds)
    headers["Authorization"] = creds
    return wrk.format(nil, nil, headers)
end)

local out_path = os.getenv("BENCH_TOKENS_OUT")
if out_path then lib.harvest(out_path, tonumber(os.getenv("BENCH_HARVEST") or "1000")) end
