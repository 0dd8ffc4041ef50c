-- Why (issue 19 item 4): dispatch hints carried the dispatch secret as a
-- bearer token, and the request waits in pg_net's queue, readable by other
-- roles on hosted Supabase (PUBLIC): the runner role could read the secret
-- after calling queue.request_dispatch(). Hints now carry a timestamp and
-- an HMAC-SHA256 of "<timestamp>.<body>" keyed by the secret
-- (supabase/functions/_shared/hint-signature.ts), good for five minutes and
-- for that body only. The HMAC is pgcrypto's (the `extensions` schema on
-- Supabase and on the local stack), found by its schema at run time.

-- HMAC-SHA256 of `message` keyed by `secret`, in hex.
create or replace function private.hint_hmac(secret text, message text)
returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  crypto_schema text;
  signature text;
begin
  select n.nspname into crypto_schema
  from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
  where e.extname = 'pgcrypto';
  if crypto_schema is null then
    raise exception 'pgcrypto is not installed; dispatch hints cannot be signed' using errcode = 'undefined_function';
  end if;
  execute format('select encode(%I.hmac(convert_to($1, ''UTF8''), convert_to($2, ''UTF8''), ''sha256''), ''hex'')', crypto_schema)
    into signature
    using message, secret;
  return signature;
end
$$;

revoke all on function private.hint_hmac(text, text) from public;

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
  signed_at bigint;
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
      -- Signed, never the secret itself: the request waits in pg_net's
      -- queue, which other roles may read (hint-signature.ts).
      signed_at := floor(extract(epoch from clock_timestamp()))::bigint;
      execute 'select net.http_post(url := $1, body := $2, headers := $3, timeout_milliseconds := $4)'
        into request_id
        using rtrim(functions_url, '/') || '/functions/v1/' || function_name,
              coalesce(body, '{}'::jsonb),
              jsonb_build_object(
                'Content-Type', 'application/json',
                'X-Dispatch-Timestamp', signed_at::text,
                'X-Dispatch-Signature', 'v1=' || private.hint_hmac(dispatch_secret, signed_at::text || '.' || coalesce(body, '{}'::jsonb)::text)
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
