-- Why: staff need to tell apart, in Studio, the failures that are the
-- document's (the registry says it does not exist), those that need them
-- (an account refused, a page nobody recognised) and those that pass on
-- their own (the registry in maintenance, the Gemini quota). A runner decides
-- which in one place (runners/lifecycle/job-errors.ts) and records it with
-- the failure; this lookup table is the one list of kinds in the database,
-- mirrored by ERROR_KINDS in job-errors.ts (a test keeps them in agreement).

create table if not exists public.error_kind (
  name text primary key,
  whose text not null check (whose in ('document', 'staff', 'account', 'registry', 'infrastructure', 'configuration')),
  description text not null
);

comment on table public.error_kind is
  'Kinds of failure recorded in extraction_queue.error_kind: whose problem it is, and what it means.';

insert into public.error_kind (name, whose, description) values
  ('document_not_found', 'document', 'the registry says the document does not exist; final, no retry can find it'),
  ('invalid_input', 'document', 'the row can never succeed as written (paper-only document, no exact number, a PDF past the limits); final'),
  ('document_unreadable', 'document', 'OCR found no readable page in the document'),
  ('document_retryable', 'document', 'this attempt failed in a way another may not (a timeout, a truncated answer); one attempt spent'),
  ('needs_attention', 'staff', 'a page or answer nobody recognised; one attempt spent, the details (and a trace where kept) in the error'),
  ('account', 'account', 'the registry refused the account (login, session, payment card); no attempt spent, the account is charged'),
  ('registry_unavailable', 'registry', 'the registry is down, in maintenance or answering 5xx; no attempt spent, registre dispatch cools down'),
  ('quota', 'infrastructure', 'the Gemini quota or the shared budget held the call; no attempt spent'),
  ('infrastructure', 'infrastructure', 'network, Storage, Upstash, database or browser could not work; no attempt spent'),
  ('configuration', 'configuration', 'the deployment is misconfigured (Gemini key, model, billing); no attempt spent, the pool stops until fixed')
on conflict (name) do update set whose = excluded.whose, description = excluded.description;

alter table public.error_kind enable row level security;
revoke all on table public.error_kind from public, anon, authenticated;
grant select on table public.error_kind to service_role;

alter table public.extraction_queue
  add column if not exists error_kind text references public.error_kind (name);

comment on column public.extraction_queue.error_kind is
  'Kind of the last failure (see error_kind): whose problem it is. Filter on it in Studio: needs_attention and account need staff.';

create index if not exists extraction_queue_error_kind_idx on public.extraction_queue (error_kind) where error_kind is not null;

-- The failure functions take the kind. The old signatures go, so no caller
-- can record a failure without one by accident of overloading.
drop function if exists queue.fail_job(uuid, uuid, text, boolean);
drop function if exists queue.release_job_after_infrastructure_failure(uuid, uuid, text);

-- Records `error` of kind `error_kind` for job `job_id` (in `error_message`
-- for the extraction stage, `ocr_error` for the OCR stage) and ends the
-- runner's lease. A final failure (`is_final`) moves the row to 4 at once; a
-- retryable one sends it back to its stage's waiting status (1 or 3), not
-- claimable before the backoff has passed, or to 4 once the stage's attempts
-- are spent (see private.status_after_failure). Returns the new status id.
-- Refused with QL001 unless `lease_token` is the current lease of either
-- stage.
create or replace function queue.fail_job(job_id uuid, lease_token uuid, error text, is_final boolean, error_kind text)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  new_status integer;
  -- Keeps a runaway stack trace from bloating the row; the start says why.
  stored_error text := left(fail_job.error, 10000);
begin
  perform private.require_text(fail_job.error, 'error');
  if fail_job.is_final is null then
    raise exception 'is_final is required: true for a failure that can never succeed, false for a retryable one'
      using errcode = 'invalid_parameter_value';
  end if;
  perform private.require_error_kind(fail_job.error_kind);

  update public.extraction_queue q
  set status_id = private.status_after_failure(q, fail_job.is_final),
      available_at = now() + private.retry_backoff(case when q.status_id = 2 then q.attempts else q.ocr_attempts end),
      error_message = case when q.status_id = 2 then stored_error else q.error_message end,
      last_error_at = case when q.status_id = 2 then now() else q.last_error_at end,
      ocr_error = case when q.status_id = 6 then stored_error else q.ocr_error end,
      ocr_last_error_at = case when q.status_id = 6 then now() else q.ocr_last_error_at end,
      error_kind = fail_job.error_kind,
      infrastructure_releases = 0,
      worker_id = case when q.status_id = 2 then null else q.worker_id end,
      ocr_worker_id = case when q.status_id = 6 then null else q.ocr_worker_id end,
      extraction_lease_token = null,
      extraction_lease_expires_at = null,
      ocr_lease_token = null,
      ocr_lease_expires_at = null
  where q.id = fail_job.job_id
    and (private.holds_extraction_lease(q, fail_job.lease_token)
         or private.holds_ocr_lease(q, fail_job.lease_token))
  returning q.status_id into new_status;
  if not found then
    perform private.raise_lease_not_held(fail_job.job_id, fail_job.lease_token, 'fail_job');
  end if;
  return new_status;
end
$$;

-- Hands job `job_id` back after an infrastructure failure of kind
-- `error_kind` described by `error`: gives back the attempt its claim
-- counted, counts one more infrastructure release, and moves it to its
-- stage's waiting status (2 → 1, 6 → 3) claimable after
-- private.infrastructure_backoff, or to 4 when this release reaches
-- max_infrastructure_releases. Returns the new status id. Refused with
-- QL001 unless `lease_token` is the current lease of either stage.
create or replace function queue.release_job_after_infrastructure_failure(job_id uuid, lease_token uuid, error text, error_kind text)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  new_status integer;
  stored_error text := left(release_job_after_infrastructure_failure.error, 10000);
begin
  perform private.require_text(release_job_after_infrastructure_failure.error, 'error');
  perform private.require_error_kind(release_job_after_infrastructure_failure.error_kind);

  -- In SET, q.* are the values before the update.
  update public.extraction_queue q
  set status_id = private.status_after_interruption(q, q.infrastructure_releases + 1 >= q.max_infrastructure_releases),
      attempts = case when q.status_id = 2 then greatest(q.attempts - 1, 0) else q.attempts end,
      ocr_attempts = case when q.status_id = 6 then greatest(q.ocr_attempts - 1, 0) else q.ocr_attempts end,
      infrastructure_releases = q.infrastructure_releases + 1,
      available_at = now() + private.infrastructure_backoff(q.infrastructure_releases + 1),
      error_message = case when q.status_id = 2 then private.infrastructure_release_message(q, stored_error) else q.error_message end,
      last_error_at = case when q.status_id = 2 then now() else q.last_error_at end,
      ocr_error = case when q.status_id = 6 then private.infrastructure_release_message(q, stored_error) else q.ocr_error end,
      ocr_last_error_at = case when q.status_id = 6 then now() else q.ocr_last_error_at end,
      error_kind = release_job_after_infrastructure_failure.error_kind,
      worker_id = case when q.status_id = 2 then null else q.worker_id end,
      ocr_worker_id = case when q.status_id = 6 then null else q.ocr_worker_id end,
      extraction_lease_token = null,
      extraction_lease_expires_at = null,
      ocr_lease_token = null,
      ocr_lease_expires_at = null
  where q.id = release_job_after_infrastructure_failure.job_id
    and (private.holds_extraction_lease(q, release_job_after_infrastructure_failure.lease_token)
         or private.holds_ocr_lease(q, release_job_after_infrastructure_failure.lease_token))
  returning q.status_id into new_status;
  if not found then
    perform private.raise_lease_not_held(release_job_after_infrastructure_failure.job_id,
                                         release_job_after_infrastructure_failure.lease_token,
                                         'release_job_after_infrastructure_failure');
  end if;
  return new_status;
end
$$;

-- Refuses a missing or unknown kind, naming the known ones.
create or replace function private.require_error_kind(kind text)
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if kind is null or not exists (select 1 from public.error_kind k where k.name = kind) then
    raise exception 'error_kind % is not one of: %', coalesce(quote_literal(kind), 'null'),
      (select string_agg(k.name, ', ' order by k.name) from public.error_kind k)
      using errcode = 'invalid_parameter_value';
  end if;
end
$$;

revoke all on function private.require_error_kind(text) from public;
revoke all on function queue.fail_job(uuid, uuid, text, boolean, text) from public;
revoke all on function queue.release_job_after_infrastructure_failure(uuid, uuid, text, text) from public;
grant execute on function queue.fail_job(uuid, uuid, text, boolean, text) to runner, service_role;
grant execute on function queue.release_job_after_infrastructure_failure(uuid, uuid, text, text) to runner, service_role;
