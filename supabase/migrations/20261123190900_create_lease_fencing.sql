-- Why: every write by a runner must present the lease token it got at claim,
-- and a runner whose lease expired (or was reaped, or re-claimed by another
-- runner) must not overwrite anything. These helpers are the one definition
-- of "holds the lease" used by every transition, and the one place that
-- explains a refusal.
--
-- Error contract of the transition functions (a refused call changes
-- nothing, because the error aborts the statement):
--   QL001 lease_not_held    the token is not the current, unexpired lease of
--                           the job (or the job does not exist): drop the job
--                           without writing anything more.
--   QL002 terminal_status   the row is in 4 or 5 and only retry_job may
--                           reopen it (raised by the terminal-status guard).
--   QL003 not_retryable     retry_job on a row that is not in 4 (Erreur).
--   22023 invalid_parameter_value  a bad argument; the message names it.

-- True when `lease_token` is the current, unexpired extraction lease.
-- No fixed search_path, unlike the other helpers: it touches no table and
-- names only built-in operators, and a SET clause would stop the planner from
-- inlining it into every fenced UPDATE (it would parse its body per call).
create or replace function private.holds_extraction_lease(job public.extraction_queue, lease_token uuid)
returns boolean
language sql
stable
as $$
  select job.status_id = 2
     and job.extraction_lease_token = lease_token
     and job.extraction_lease_expires_at > now()
$$;

-- True when `lease_token` is the current, unexpired OCR lease.
create or replace function private.holds_ocr_lease(job public.extraction_queue, lease_token uuid)
returns boolean
language sql
stable
as $$
  select job.status_id = 6
     and job.ocr_lease_token = lease_token
     and job.ocr_lease_expires_at > now()
$$;

-- Raises QL001 with a message saying why `lease_token` does not hold job
-- `job_id`; called by a transition whose fenced update matched no row.
create or replace function private.raise_lease_not_held(job_id uuid, lease_token uuid, operation text)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  job public.extraction_queue;
  status_name text;
  reason text;
begin
  select q.* into job from public.extraction_queue q where q.id = job_id;
  if not found then
    reason := 'there is no such job';
  else
    select s.name into status_name from public.extraction_status s where s.id = job.status_id;
    if job.status_id not in (2, 6) then
      reason := format('no runner holds it (status %s, %s)', job.status_id, status_name);
    elsif lease_token is distinct from coalesce(job.extraction_lease_token, job.ocr_lease_token) then
      reason := 'the lease token is not current: the lease was reaped or the job re-claimed by another runner';
    elsif coalesce(job.extraction_lease_expires_at, job.ocr_lease_expires_at) <= now() then
      reason := format('the lease expired at %s', coalesce(job.extraction_lease_expires_at, job.ocr_lease_expires_at));
    else
      reason := format('it does not apply to a job in status %s (%s)', job.status_id, status_name);
    end if;
  end if;
  raise exception '% refused for job %: %; nothing was changed', operation, job_id, reason
    using errcode = 'QL001',
          hint = 'Stop working on this job and do not write its result: it is no longer yours.';
end
$$;

-- Raises 22023 naming `parameter_name` when `value` is null or blank.
create or replace function private.require_text(value text, parameter_name text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if value is null or btrim(value) = '' then
    raise exception '% is required and cannot be blank', parameter_name
      using errcode = 'invalid_parameter_value';
  end if;
end
$$;

-- Raises 22023 naming `parameter_name` when `value` is null or outside
-- [minimum, maximum].
create or replace function private.require_between(value integer, minimum integer, maximum integer, parameter_name text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if value is null or value < minimum or value > maximum then
    raise exception '% must be between % and %; got %', parameter_name, minimum, maximum, coalesce(value::text, 'null')
      using errcode = 'invalid_parameter_value';
  end if;
end
$$;

revoke all on function private.holds_extraction_lease(public.extraction_queue, uuid) from public;
revoke all on function private.holds_ocr_lease(public.extraction_queue, uuid) from public;
revoke all on function private.raise_lease_not_held(uuid, uuid, text) from public;
revoke all on function private.require_text(text, text) from public;
revoke all on function private.require_between(integer, integer, integer, text) from public;
