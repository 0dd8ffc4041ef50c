-- Why: a dispatch hint is only a hint (the pg_cron tick is the guarantee),
-- yet it runs inside the triggers of every transition. Until now an error
-- in pg_net (its queue table unavailable, the extension half upgraded) or in
-- Vault (a missing grant, a decryption failure) aborted the completion,
-- failure, release or reap that fired it: a finished document lost over a
-- hint. Now any error of the call is caught and raised as a warning, and the
-- transition goes on. pg_net is recognised by its function `net.http_post`
-- rather than by the extension's catalog entry, which is the same thing on
-- Supabase and lets a test stand in a failing pg_net.

-- Calls edge function `function_name` with JSON `body`: a pg_net POST to
-- <functions_url>/functions/v1/<function_name> with the dispatch secret as
-- bearer token when pg_net is installed (returns the pg_net request id), a
-- NOTIFY on `edge_function_calls` otherwise (returns null). Never fails the
-- caller's transaction over the call itself: a missing URL or secret, or any
-- error of pg_net, Vault or NOTIFY, becomes a warning and returns null (a
-- lost hint only delays work until the next tick). Only a malformed
-- `function_name`, a bug of the caller, raises.
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

  begin
    if exists (
      select from pg_catalog.pg_proc p
      join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'net' and p.proname = 'http_post'
    ) then
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
  exception when others then
    raise warning 'edge function % not called: the hint failed (SQLSTATE %: %); the transition goes on and the pg_cron tick will dispatch',
      function_name, sqlstate, sqlerrm;
    return null;
  end;
end
$$;

revoke all on function private.invoke_edge_function(text, jsonb) from public;
