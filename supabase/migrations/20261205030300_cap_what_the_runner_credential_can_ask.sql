-- Why: the runner credential could do more than a runner needs (issue 19,
-- item 11): claim 1,000 rows at a time with 24-hour leases, lease every
-- registry account in turn (reading each password), and call
-- request_dispatch() without limit (each call a pg_net request). The SQL
-- now caps what any caller may ask:
-- - claim_jobs: batch_size 1..50 (a runner claims 1), lease_seconds
--   1..3600 (the longest default lease is 600 s);
-- - heartbeat_job, heartbeat_registry_account: lease_seconds 1..3600;
-- - lease_registry_account: lease_seconds 1..3600, one live lease per
--   worker, and at most registry_account_lease_limit.per_minute leases a
--   minute across workers;
-- - request_dispatch: at most one hint per
--   request_dispatch_throttle.min_interval (1 s), the rest suppressed (the
--   dispatch it started runs again for hints that came meanwhile, and the
--   tick is the guarantee).
-- Function bodies are the latest ones (20261129110600, 20261123191100,
-- 20261129120100, 20261123192100) with only these checks changed.

create table if not exists private.registry_account_lease_limit (
  singleton boolean primary key default true check (singleton),
  per_minute integer not null default 20 check (per_minute > 0)
);
alter table private.registry_account_lease_limit enable row level security;
revoke all on table private.registry_account_lease_limit from public;
insert into private.registry_account_lease_limit default values on conflict do nothing;
comment on table private.registry_account_lease_limit is
  'One row: how many registry account leases all workers together may take per minute (runners lease one at their first login).';

create table if not exists private.request_dispatch_throttle (
  singleton boolean primary key default true check (singleton),
  min_interval interval not null default interval '1 second',
  last_sent_at timestamptz not null default '-infinity'
);
alter table private.request_dispatch_throttle enable row level security;
revoke all on table private.request_dispatch_throttle from public;
insert into private.request_dispatch_throttle default values on conflict do nothing;
comment on table private.request_dispatch_throttle is
  'One row: when queue.request_dispatch() last sent a hint, and the shortest gap between two.';

create or replace function queue.claim_jobs(kind text, worker_id text, batch_size integer, lease_seconds integer)
returns table (
  id uuid,
  lease_token uuid,
  lease_expires_at timestamptz,
  document_source text,
  document_number text,
  document_number_normalized text,
  circonscription_fonciere text,
  cadastre text,
  designation_secondaire text,
  acte_type text,
  supabase_path text,
  attempt integer
)
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  expires_at timestamptz;
  ocr_source text;
begin
  if claim_jobs.kind is null or claim_jobs.kind not in ('registre', 'index-ocr', 'acte-ocr') then
    raise exception 'kind must be one of registre, index-ocr, acte-ocr; got %', coalesce('"' || claim_jobs.kind || '"', 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  perform private.require_text(claim_jobs.worker_id, 'worker_id');
  perform private.require_between(claim_jobs.batch_size, 1, 50, 'batch_size');
  perform private.require_between(claim_jobs.lease_seconds, 1, 3600, 'lease_seconds');

  expires_at := now() + make_interval(secs => claim_jobs.lease_seconds);

  -- Locking: `for update skip locked` lets any number of runners claim at
  -- once without waiting on each other: each locks a disjoint set of rows,
  -- and a row another claimer has locked is simply not offered. Under read
  -- committed, a row that another claimer already moved to 2/6 fails the
  -- re-checked `status_id` condition and is dropped, so no row is claimed
  -- twice. The update then runs only on rows this transaction has locked.
  if claim_jobs.kind = 'registre' then
    return query
      with picked as (
        select q.id
        from public.extraction_queue q
        where q.status_id = 1
          and q.available_at <= now()
        order by q.priority desc, q.created_at, q.id
        limit claim_jobs.batch_size
        for update skip locked
      )
      update public.extraction_queue q
      set status_id = 2,
          worker_id = claim_jobs.worker_id,
          processing_started_at = now(),
          attempts = q.attempts + 1,
          extraction_lease_token = gen_random_uuid(),
          extraction_lease_expires_at = expires_at
      from picked
      where q.id = picked.id
      returning q.id, q.extraction_lease_token, q.extraction_lease_expires_at,
                q.document_source, q.document_number, q.document_number_normalized,
                q.circonscription_fonciere, q.cadastre, q.designation_secondaire,
                q.acte_type, q.supabase_path, q.attempts;
    return;
  end if;

  ocr_source := case claim_jobs.kind when 'index-ocr' then 'index' else 'acte' end;
  return query
    with picked as (
      select q.id
      from public.extraction_queue q
      where q.status_id = 3
        and q.document_source = ocr_source
        and q.supabase_path is not null
        and q.available_at <= now()
      order by q.priority desc, q.created_at, q.id
      limit claim_jobs.batch_size
      for update skip locked
    )
    update public.extraction_queue q
    set status_id = 6,
        ocr_worker_id = claim_jobs.worker_id,
        ocr_started_at = now(),
        ocr_completed_at = null,
        ocr_attempts = q.ocr_attempts + 1,
        ocr_lease_token = gen_random_uuid(),
        ocr_lease_expires_at = expires_at
    from picked
    where q.id = picked.id
    returning q.id, q.ocr_lease_token, q.ocr_lease_expires_at,
              q.document_source, q.document_number, q.document_number_normalized,
              q.circonscription_fonciere, q.cadastre, q.designation_secondaire,
              q.acte_type, q.supabase_path, q.ocr_attempts;
end
$$;

create or replace function queue.heartbeat_job(job_id uuid, lease_token uuid, lease_seconds integer)
returns timestamptz
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  new_expiry timestamptz;
begin
  perform private.require_between(heartbeat_job.lease_seconds, 1, 3600, 'lease_seconds');
  new_expiry := now() + make_interval(secs => heartbeat_job.lease_seconds);

  update public.extraction_queue q
  set extraction_lease_expires_at = case when q.status_id = 2 then new_expiry else q.extraction_lease_expires_at end,
      ocr_lease_expires_at = case when q.status_id = 6 then new_expiry else q.ocr_lease_expires_at end
  where q.id = heartbeat_job.job_id
    and (private.holds_extraction_lease(q, heartbeat_job.lease_token)
         or private.holds_ocr_lease(q, heartbeat_job.lease_token));
  if not found then
    perform private.raise_lease_not_held(heartbeat_job.job_id, heartbeat_job.lease_token, 'heartbeat_job');
  end if;
  return new_expiry;
end
$$;

create or replace function queue.lease_registry_account(worker_id text, lease_seconds integer)
returns table (account_id uuid, username text, password text, lease_token uuid, lease_expires_at timestamptz)
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform private.require_text(lease_registry_account.worker_id, 'worker_id');
  perform private.require_between(lease_registry_account.lease_seconds, 1, 3600, 'lease_seconds');

  -- One account per worker: a worker asking again gives back what it still
  -- holds (a release that never landed) instead of holding two.
  update public.registry_accounts a
  set leased_by = null, lease_token = null, lease_expires_at = null
  where a.leased_by = lease_registry_account.worker_id
    and a.lease_expires_at > now();

  -- Leasing every account in turn (a password each) is not what a runner
  -- does: it leases one at its first login and another after a refused
  -- one. Past private.registry_account_lease_limit leases in the last
  -- minute, across all workers, the answer is "none free", which the
  -- runner treats as an infrastructure wait (no attempt spent).
  if (select count(*) from public.registry_accounts a where a.last_used_at > now() - interval '1 minute')
     >= (select l.per_minute from private.registry_account_lease_limit l) then
    return;
  end if;

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
    returning a.id,
              a.username,
              (select s.decrypted_secret from vault.decrypted_secrets s where s.id = a.password_secret_id),
              a.lease_token,
              a.lease_expires_at;
end
$$;

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
  perform private.require_between(heartbeat_registry_account.lease_seconds, 1, 3600, 'lease_seconds');
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

create or replace function queue.request_dispatch()
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  claimable bigint;
  taken boolean;
begin
  select coalesce(sum(b.waiting), 0) into claimable from queue.queue_backlog() b;
  if claimable = 0 then
    return false;
  end if;
  -- One hint per interval, whoever calls: skip locked, as in take_dispatch_hint_slot.
  with due as (
    select t.singleton
    from private.request_dispatch_throttle t
    where t.last_sent_at <= clock_timestamp() - t.min_interval
    for update skip locked
  )
  update private.request_dispatch_throttle t
  set last_sent_at = clock_timestamp()
  from due
  where t.singleton = due.singleton
  returning true into taken;
  if not coalesce(taken, false) then
    return false;
  end if;
  perform private.invoke_edge_function('dispatch', jsonb_build_object(
    'reason', 'capacity-returned', 'source', 'runner', 'jobs', claimable));
  return true;
end
$$;

revoke all on function queue.request_dispatch() from public;
grant execute on function queue.request_dispatch() to runner;
revoke all on function queue.claim_jobs(text, text, integer, integer) from public;
grant execute on function queue.claim_jobs(text, text, integer, integer) to runner, service_role;
revoke all on function queue.heartbeat_job(uuid, uuid, integer) from public;
grant execute on function queue.heartbeat_job(uuid, uuid, integer) to runner, service_role;
revoke all on function queue.lease_registry_account(text, integer) from public;
grant execute on function queue.lease_registry_account(text, integer) to runner, service_role;
revoke all on function queue.heartbeat_registry_account(uuid, uuid, integer) from public;
grant execute on function queue.heartbeat_registry_account(uuid, uuid, integer) to runner, service_role;
