-- wrk script: POST one JSON body, read from a file, with extra headers, on keep-alive
-- connections. wrk formats the request once after init(), so it stays as fast as a GET.
--   wrk -t1 -c64 -d10s -s bench/post.lua http://127.0.0.1:PORT/v1/chat/completions \
--       -- BODY_FILE ['Name: value' ...]
function init(args)
   if args[1] == nil then
      error("post.lua: give the body file after --")
   end
   local f = assert(io.open(args[1], "rb"))
   wrk.body = f:read("*a")
   f:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   for i = 2, #args do
      local name, value = args[i]:match("^([^:]+):%s*(.*)$")
      if name == nil then
         error("post.lua: header '" .. args[i] .. "' is not 'Name: value'")
      end
      wrk.headers[name] = value
   end

end
