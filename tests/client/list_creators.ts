// A client generated from the OpenAPI document (openapi-typescript types + openapi-fetch) that
// creates two creators and lists them back, page by page, then reads one and searches. Any change
// to the document that breaks a typed call here fails tsc before anything runs.
import createClient from "openapi-fetch";
import type { components, paths } from "./api.js";

// Node's globals, declared here rather than pulling in @types/node.
declare const process: { argv: string[]; exit(code: number): never };

type Creator = components["schemas"]["Creator"];

function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new Error("check failed: " + what);
}

async function main(baseUrl: string): Promise<void> {
  const api = createClient<paths>({ baseUrl });
  const names = ["Ada Generated", "Bo Generated"];
  for (const [i, name] of names.entries()) {
    const { data, error, response } = await api.POST("/api/creators", {
      body: { name, handle: `generated${i}`, email: `g${i}@example.com`, tags: ["client"] },
    });
    check(response.status === 201 && data !== undefined, `create ${name}: ${response.status} ${JSON.stringify(error)}`);
    check(data.name === name && data.tags[0] === "client", `created ${JSON.stringify(data)}`);
  }

  const seen: Creator[] = [];
  let cursor: string | undefined;
  for (;;) {
    const { data, response } = await api.GET("/api/creators", { params: { query: { limit: 1, cursor } } });
    check(response.status === 200 && data !== undefined, `list: ${response.status}`);
    seen.push(...data.items);
    if (!data.has_more || data.next_cursor === null) break;
    cursor = data.next_cursor;
  }
  check(seen.length === 2, `listed ${seen.length} creators`);
  check(seen.map((c) => c.name).sort().join() === [...names].sort().join(), `names ${seen.map((c) => c.name)}`);

  const one = await api.GET("/api/creators/{id}", { params: { path: { id: seen[0].id } } });
  check(one.data?.id === seen[0].id, "get by id");
  const found = await api.GET("/api/creators", { params: { query: { q: "bo gen" } } });
  check(found.data?.items.length === 1 && found.data.items[0].name === "Bo Generated", "search");
  const missing = await api.GET("/api/creators/{id}", { params: { path: { id: 999999 } } });
  check(missing.response.status === 404 && missing.error?.error.code === "not_found", `404: ${JSON.stringify(missing.error)}`);
  console.log(`generated client: listed ${seen.length} creators: ${seen.map((c) => c.name).join(", ")}`);
}

main(process.argv[2]).catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
