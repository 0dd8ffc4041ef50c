-- Why: terminal rows stay terminal, except when an operator decides a
-- failed job deserves another go (the registry was down all night, a bug
-- was fixed). That decision is explicit and recorded: who, when, why, and
-- the errors the row carried before it was reopened.

create table if not exists public.extraction_queue_retries (
  id bigint generated always as identity primary key,
  job_id uuid not null references public.extraction_queue (id) on delete cascade,
  operator text not null,
  reason text not null,
  retried_at timestamptz not null default now(),
  from_status_id integer not null references public.extraction_status (id),
  to_status_id integer not null references public.extraction_status (id),
  previous_error_message text,
  previous_ocr_error text
);

comment on table public.extraction_queue_retries is
  'Audit of queue.retry_job: each operator action that reopened a failed job, with who, when, why and the errors it had.';

create index if not exists extraction_queue_retries_job_idx
  on public.extraction_queue_retries (job_id, retried_at desc);

alter table public.extraction_queue_retries enable row level security;
revoke all on table public.extraction_queue_retries from public, anon, authenticated;
-- Supabase's default privileges also grant new sequences in public to anon.
revoke all on sequence public.extraction_queue_retries_id_seq from public, anon, authenticated;
grant select on table public.extraction_queue_retries to service_role;

-- Reopens failed job `job_id` (status 4) on behalf of `operator` for
-- `reason`: a job whose PDF was already downloaded goes back to 3 (OCR again)
-- with its OCR attempts reset; any other goes back to 1 with its extraction
-- attempts reset. Clears the reopened stage's error (the audit row keeps
-- it) and returns the new status id. Raises P0002 when the job does not
-- exist and QL003 when it is not in status 4.
create or replace function queue.retry_job(job_id uuid, operator text, reason text)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  job public.extraction_queue;
  reopen_to integer;
begin
  perform private.require_text(retry_job.operator, 'operator');
  perform private.require_text(retry_job.reason, 'reason');

  select q.* into job from public.extraction_queue q where q.id = retry_job.job_id for update;
  if not found then
    raise exception 'retry_job refused: there is no job %', retry_job.job_id
      using errcode = 'no_data_found';
  end if;
  if job.status_id <> 4 then
    raise exception 'retry_job refused for job %: only a job in status 4 (Erreur) can be retried; it is in status %',
      retry_job.job_id, job.status_id
      using errcode = 'QL003';
  end if;

  reopen_to := case
    when job.supabase_path is not null and job.document_source <> 'plan_cadastraux' then 3
    else 1
  end;

  insert into public.extraction_queue_retries
    (job_id, operator, reason, from_status_id, to_status_id, previous_error_message, previous_ocr_error)
  values
    (job.id, btrim(retry_job.operator), retry_job.reason, job.status_id, reopen_to, job.error_message, job.ocr_error);

  -- Lets the terminal-status guard through for this row only.
  perform set_config('extraction_queue.reopening', job.id::text, true);
  update public.extraction_queue q
  set status_id = reopen_to,
      available_at = now(),
      attempts = case when reopen_to = 1 then 0 else q.attempts end,
      error_message = case when reopen_to = 1 then null else q.error_message end,
      ocr_attempts = case when reopen_to = 3 then 0 else q.ocr_attempts end,
      ocr_error = case when reopen_to = 3 then null else q.ocr_error end
  where q.id = job.id;
  perform set_config('extraction_queue.reopening', '', true);

  return reopen_to;
end
$$;

revoke all on function queue.retry_job(uuid, text, text) from public;
grant execute on function queue.retry_job(uuid, text, text) to service_role;
