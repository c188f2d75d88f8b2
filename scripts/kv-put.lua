-- wrk: durable KV puts of 200 bytes, keys spread over 1,000 (scripts/bench-blueprint.sh,
-- scripts/bench-cluster.sh).
wrk.method = "PUT"
wrk.body = string.rep("v", 200)
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/kv/bench/key" .. (n % 1000))
end
