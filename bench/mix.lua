-- A realistic mix of creatord requests for wrk (bench/mix_bench.sh runs it):
--   wrk -s bench/mix.lua URL -- DATA NONCE [ONLY] [TOKEN]
-- DATA: the Lua table bench/seed.py wrote (ids, real next_cursor values, q texts, ETags);
-- NONCE: makes the handles this run creates unique; ONLY: kinds of request to run, comma-
-- separated, at their weights in the mix (empty: all); TOKEN: sent as a bearer token.
--
-- Each request carries X-Request-Id "mix-KIND-THREAD-N", which creatord echoes, so response()
-- knows what it answers (wrk does not say which connection a response belongs to). done() prints
-- one "mixstat KIND STATUS COUNT ok|UNEXPECTED" line per kind and status for the script to check:
-- a mix that silently got 404s would measure nothing.

local data, nonce, token  -- set by init() in each thread's Lua state
local thread_no = 0       -- the thread's number (setup() sets the global tid)
local n = 0               -- requests this thread has made

local function pick(list)
  return list[math.random(#list)]
end

local function headers_for(kind, extra)
  n = n + 1
  local h = { ["X-Request-Id"] = "mix-" .. kind .. "-" .. thread_no .. "-" .. n }
  if token then h["Authorization"] = "Bearer " .. token end
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

local function get(kind, path, extra)
  return wrk.format("GET", path, headers_for(kind, extra))
end

local function json(kind, method, path, body)
  return wrk.format(method, path, headers_for(kind, { ["Content-Type"] = "application/json" }), body)
end

-- {name, weight per mille, expected statuses, request builder}: the same in every Lua state
-- (done() runs in the main one, which never sees init()).
local kinds
do
  local ok, ok304, ok201 = { [200] = true }, { [304] = true }, { [201] = true }
  local function limit()
    local l = math.random(#data.limits + 2)  -- the default limit (50) twice as often as any other
    return l > #data.limits and "" or ("limit=" .. data.limits[l])
  end
  local function some_creator_for_images()
    -- most image-list reads are of creators who have images, some of creators who have none
    return math.random(10) <= 7 and pick(data.with_images) or pick(data.creators)
  end
  kinds = {
    { "list", 150, ok, function() return get("list", "/api/creators?" .. limit()) end },
    { "list_cursor", 200, ok, function()
        local l = limit()
        return get("list_cursor", "/api/creators?" .. (l == "" and "" or l .. "&") .. "cursor=" .. pick(data.cursors))
      end },
    { "search", 100, ok, function() return get("search", pick(data.searches)) end },
    { "creator", 150, ok, function() return get("creator", "/api/creators/" .. pick(data.creators)) end },
    { "images", 150, ok, function()
        return get("images", "/api/creators/" .. some_creator_for_images() .. "/images")
      end },
    { "content", 100, ok, function() return get("content", "/api/images/" .. pick(data.images) .. "/content") end },
    { "content_304", 100, ok304, function()
        local i = math.random(#data.images)
        return get("content_304", "/api/images/" .. data.images[i] .. "/content",
                   { ["If-None-Match"] = data.etags[i] })
      end },
    { "create", 25, ok201, function()
        local handle = "mix" .. nonce .. "t" .. thread_no .. "n" .. n
        return json("create", "POST", "/api/creators", '{"name":"Mix Creator ' .. n .. '","handle":"' .. handle ..
                    '","email":"' .. handle .. '@example.com","bio":"Written by the benchmark mix.","tags":["mix"]}')
      end },
    { "patch", 25, ok, function()
        return json("patch", "PATCH", "/api/creators/" .. pick(data.creators),
                    '{"bio":"Changed by the benchmark mix, ' .. n .. '."}')
      end },
  }
end

-- main Lua state: one per wrk thread, numbered
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- per-thread Lua state
local selected, total, cumulative, count_name = {}, 0, {}, {}
function init(args)
  thread_no = tid or 0
  data = dofile(args[1])
  nonce = args[2] or "0"
  local only = (args[3] and args[3] ~= "") and ("," .. args[3] .. ",") or nil
  token = (args[4] and args[4] ~= "") and args[4] or nil
  math.randomseed(thread_no * 7919)
  for _, k in ipairs(kinds) do
    if not only or only:find("," .. k[1] .. ",", 1, true) then
      table.insert(selected, k)
      total = total + k[2]
      table.insert(cumulative, total)
    end
  end
  if #selected == 0 then error("mix.lua: no request kind in " .. tostring(args[3])) end
  counted = ""  -- the names of the count globals, space-separated, for done()
end

function request()
  local r = math.random(total)
  for i, c in ipairs(cumulative) do
    if r <= c then return selected[i][4]() end
  end
end

-- Counts live in plain number globals ("mixn_KIND_STATUS"): wrk's thread:get copies numbers and
-- strings safely, nested tables not.
function response(status, headers)
  local rid = headers["X-Request-Id"]
  local kind = rid and rid:match("^mix%-([%w_]+)%-") or "unknown"
  local names = count_name[kind]
  if not names then names = {}; count_name[kind] = names end
  local name = names[status]
  if not name then
    name = "mixn_" .. kind .. "_" .. status
    names[status] = name
    counted = counted .. " " .. name
    _G[name] = 0
  end
  _G[name] = _G[name] + 1
end

function done()
  local sums, order = {}, {}
  for _, t in ipairs(threads) do
    for name in (t:get("counted") or ""):gmatch("%S+") do
      if not sums[name] then sums[name] = 0; table.insert(order, name) end
      sums[name] = sums[name] + t:get(name)
    end
  end
  table.sort(order)
  for _, name in ipairs(order) do
    local kind, status = name:match("^mixn_(.+)_(%d+)$")
    local ok = false
    for _, k in ipairs(kinds) do
      if k[1] == kind then ok = k[3][tonumber(status)] or false end
    end
    print(string.format("mixstat %s %s %d %s", kind, status, sums[name], ok and "ok" or "UNEXPECTED"))
  end
end
