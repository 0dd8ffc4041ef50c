-- Why: an operator who reopens a failed job gives it a fresh start, and
-- that includes the counters added since retry_job was written: the
-- reopened stage's stalls and the run of infrastructure releases (a job that
-- gave up because the registry was down all night must not give up again
-- on its first release).

-- Reopens failed job `job_id` (status 4) on behalf of `operator` for
-- `reason`: a job whose PDF was already downloaded goes back to 3 (OCR again)
-- with its OCR attempts and stalls reset; any other goes back to 1 with its
-- extraction attempts and stalls reset; either way its infrastructure
-- releases start again from 0. Clears the reopened stage's error (the audit row keeps
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
      ocr_error = case when reopen_to = 3 then null else q.ocr_error end,
      stalls = case when reopen_to = 1 then 0 else q.stalls end,
      ocr_stalls = case when reopen_to = 3 then 0 else q.ocr_stalls end,
      infrastructure_releases = 0
  where q.id = job.id;
  perform set_config('extraction_queue.reopening', '', true);

  return reopen_to;
end
$$;

revoke all on function queue.retry_job(uuid, text, text) from public;
grant execute on function queue.retry_job(uuid, text, text) to service_role;
