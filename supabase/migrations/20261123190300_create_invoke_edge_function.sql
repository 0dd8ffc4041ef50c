-- Why: triggers and pg_cron jobs need one way to call an edge function that
-- works on hosted Supabase and on the local private cluster alike. On
-- Supabase pg_net posts the request after commit; locally there is no
-- pg_net, so the call becomes a NOTIFY on channel `edge_function_calls` that
-- the local bridge turns into the same POST. Every call is a hint: pg_net
-- may drop it, and the pg_cron tick is the guarantee.
--
-- The functions base URL and the dispatch secret come from Vault on Supabase
-- (secrets `functions_url` and `dispatch_secret`) and from the settings
-- `app.functions_url` / `app.dispatch_secret` elsewhere; never from a literal.
-- References to `net` and `vault` go through dynamic SQL so these functions
-- compile where those schemas do not exist.

-- Reads one setting of the edge-function call: the Vault secret of that name
-- when Vault is installed, else the `app.<name>` setting; null when neither
-- is set.
create or replace function private.edge_function_setting(setting_name text)
returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  secret_value text;
begin
  if to_regclass('vault.decrypted_secrets') is not null then
    execute 'select decrypted_secret from vault.decrypted_secrets where name = $1 limit 1'
      into secret_value
      using setting_name;
  end if;
  return coalesce(
    nullif(secret_value, ''),
    nullif(current_setting('app.' || setting_name, true), '')
  );
end
$$;

-- Calls edge function `function_name` with JSON `body`: a pg_net POST to
-- <functions_url>/functions/v1/<function_name> with the dispatch secret as
-- bearer token when pg_net is installed (returns the pg_net request id), a
-- NOTIFY on `edge_function_calls` otherwise (returns null). When pg_net is
-- installed but the URL or secret is missing, the call is skipped with a
-- warning instead of failing the caller's transaction: a lost hint only
-- delays work until the next tick.
create or replace function private.invoke_edge_function(function_name text, body jsonb)
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  functions_url text;
  dispatch_secret text;
  request_id bigint;
begin
  if function_name is null or function_name !~ '^[a-z0-9_-]+$' then
    raise exception 'function_name must be a plain edge function name (letters, digits, - and _); got %', coalesce(function_name, 'null')
      using errcode = 'invalid_parameter_value';
  end if;

  if exists (select from pg_catalog.pg_extension where extname = 'pg_net') then
    functions_url := private.edge_function_setting('functions_url');
    dispatch_secret := private.edge_function_setting('dispatch_secret');
    if functions_url is null or dispatch_secret is null then
      raise warning 'edge function % not called: set the Vault secrets functions_url and dispatch_secret (or the settings app.functions_url and app.dispatch_secret)', function_name;
      return null;
    end if;
    execute 'select net.http_post(url := $1, body := $2, headers := $3, timeout_milliseconds := $4)'
      into request_id
      using rtrim(functions_url, '/') || '/functions/v1/' || function_name,
            coalesce(body, '{}'::jsonb),
            jsonb_build_object(
              'Content-Type', 'application/json',
              'Authorization', 'Bearer ' || dispatch_secret
            ),
            5000;
    return request_id;
  end if;

  perform pg_notify(
    'edge_function_calls',
    json_build_object('function', function_name, 'body', coalesce(body, '{}'::jsonb))::text
  );
  return null;
end
$$;

revoke all on function private.edge_function_setting(text) from public;
revoke all on function private.invoke_edge_function(text, jsonb) from public;
