// Reports whether the function can reach its database: what an operator (or
// the local stack's readiness check) calls first when something looks wrong.
import postgres from "postgres";
import { hasProjectApiKey, projectApiKeys } from "../_shared/api-key-check.ts";
import { errorMessage } from "../_shared/error-message.ts";

const databaseUrl = Deno.env.get("SUPABASE_DB_URL");
if (!databaseUrl) throw new Error("SUPABASE_DB_URL is not set");
// prepare: false because hosted functions reach Postgres through the
// transaction pooler, which cannot keep prepared statements.
const sql = postgres(databaseUrl, { max: 1, prepare: false });
// verify_jwt is off (config.toml): the gateway's JWT check refuses the new
// API keys, which are not JWTs; the function checks the apikey itself.
const keys = projectApiKeys(Deno.env.toObject());

Deno.serve(async (request) => {
  if (!(await hasProjectApiKey(request, keys))) return Response.json({ ok: false, error: "send the project's publishable key in the apikey header" }, { status: 401 });
  try {
    const [row] = await sql<{ database: string; migrations: number }[]>`
      select current_database() as database,
             (select count(*)::int from supabase_migrations.schema_migrations) as migrations`;
    return Response.json({ ok: true, database: row?.database, migrations: row?.migrations });
  } catch (error) {
    return Response.json({ ok: false, error: errorMessage(error) }, { status: 503 });
  }
});
