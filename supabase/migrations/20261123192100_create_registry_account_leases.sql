-- Why: two runners logged in with the same registry account break each
-- other's sessions, and an account that keeps failing (wrong password,
-- locked) must stop being handed out without an operator noticing first.
-- Leases give each runner an account of its own; the same fencing rules as
-- jobs apply (QL001 when the token is not the current, unexpired lease).

-- Healthy: active, and fewer than 3 consecutive failures, or the last
-- failure is over an hour old (one more try after a cool-down).
create or replace function private.registry_account_is_healthy(account public.registry_accounts)
returns boolean
language sql
stable
set search_path = ''
as $$
  select account.is_active
     and (account.failure_count < 3 or account.last_failure_at < now() - interval '1 hour')
$$;

-- Raises QL001 for account `account_id` when `lease_token` is not its
-- current, unexpired lease.
create or replace function private.raise_account_lease_not_held(account_id uuid, operation text)
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  raise exception '% refused for registry account %: the lease token is not its current, unexpired lease; nothing was changed',
    operation, account_id
    using errcode = 'QL001',
          hint = 'Log out and lease another account.';
end
$$;

-- Leases the least recently used healthy account that no runner holds to
-- runner `worker_id` for `lease_seconds`, and returns it with its password
-- and lease token. Returns no row when every healthy account is in use.
create or replace function queue.lease_registry_account(worker_id text, lease_seconds integer)
returns table (account_id uuid, username text, password text, lease_token uuid, lease_expires_at timestamptz)
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform private.require_text(lease_registry_account.worker_id, 'worker_id');
  perform private.require_between(lease_registry_account.lease_seconds, 1, 86400, 'lease_seconds');

  -- Locking: skip locked, as in claim_jobs: two runners asking at once get
  -- different accounts, or one of them gets none.
  return query
    with picked as (
      select a.id
      from public.registry_accounts a
      where a.is_active
        and (a.lease_expires_at is null or a.lease_expires_at <= now())
        and private.registry_account_is_healthy(a)
      order by a.last_used_at nulls first, a.id
      limit 1
      for update skip locked
    )
    update public.registry_accounts a
    set leased_by = lease_registry_account.worker_id,
        lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => lease_registry_account.lease_seconds),
        last_used_at = now()
    from picked
    where a.id = picked.id
    returning a.id, a.username, a.password, a.lease_token, a.lease_expires_at;
end
$$;

-- Extends the lease of account `account_id` to `lease_seconds` from now and
-- returns the new expiry; QL001 when `lease_token` is not current.
create or replace function queue.heartbeat_registry_account(account_id uuid, lease_token uuid, lease_seconds integer)
returns timestamptz
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  new_expiry timestamptz;
begin
  perform private.require_between(heartbeat_registry_account.lease_seconds, 1, 86400, 'lease_seconds');
  update public.registry_accounts a
  set lease_expires_at = now() + make_interval(secs => heartbeat_registry_account.lease_seconds)
  where a.id = heartbeat_registry_account.account_id
    and a.lease_token = heartbeat_registry_account.lease_token
    and a.lease_expires_at > now()
  returning a.lease_expires_at into new_expiry;
  if not found then
    perform private.raise_account_lease_not_held(heartbeat_registry_account.account_id, 'heartbeat_registry_account');
  end if;
  return new_expiry;
end
$$;

-- Reports how a login or session with account `account_id` went: success
-- resets its failure count; a failure counts one more and keeps `error`
-- (required then). QL001 when `lease_token` is not current.
create or replace function queue.report_registry_account(account_id uuid, lease_token uuid, succeeded boolean, error text default null)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  if report_registry_account.succeeded is null then
    raise exception 'succeeded is required'
      using errcode = 'invalid_parameter_value';
  end if;
  if not report_registry_account.succeeded then
    perform private.require_text(report_registry_account.error, 'error');
  end if;
  update public.registry_accounts a
  set failure_count = case when report_registry_account.succeeded then 0 else a.failure_count + 1 end,
      last_failure_at = case when report_registry_account.succeeded then a.last_failure_at else now() end,
      last_error = case when report_registry_account.succeeded then a.last_error else left(report_registry_account.error, 2000) end
  where a.id = report_registry_account.account_id
    and a.lease_token = report_registry_account.lease_token
    and a.lease_expires_at > now();
  if not found then
    perform private.raise_account_lease_not_held(report_registry_account.account_id, 'report_registry_account');
  end if;
end
$$;

-- Gives account `account_id` back so another runner can lease it.
-- QL001 when `lease_token` is not current.
create or replace function queue.release_registry_account(account_id uuid, lease_token uuid)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  update public.registry_accounts a
  set leased_by = null,
      lease_token = null,
      lease_expires_at = null
  where a.id = release_registry_account.account_id
    and a.lease_token = release_registry_account.lease_token
    and a.lease_expires_at > now();
  if not found then
    perform private.raise_account_lease_not_held(release_registry_account.account_id, 'release_registry_account');
  end if;
end
$$;

revoke all on function private.registry_account_is_healthy(public.registry_accounts) from public;
revoke all on function private.raise_account_lease_not_held(uuid, text) from public;
revoke all on function queue.lease_registry_account(text, integer) from public;
revoke all on function queue.heartbeat_registry_account(uuid, uuid, integer) from public;
revoke all on function queue.report_registry_account(uuid, uuid, boolean, text) from public;
revoke all on function queue.release_registry_account(uuid, uuid) from public;
grant execute on function queue.lease_registry_account(text, integer) to runner, service_role;
grant execute on function queue.heartbeat_registry_account(uuid, uuid, integer) to runner, service_role;
grant execute on function queue.report_registry_account(uuid, uuid, boolean, text) to runner, service_role;
grant execute on function queue.release_registry_account(uuid, uuid) to runner, service_role;
