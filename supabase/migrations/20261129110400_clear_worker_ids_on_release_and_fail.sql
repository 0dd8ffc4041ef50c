-- Why: a row that is not running must not name a runner: operators read
-- worker_id / ocr_worker_id as "who has it now". Release and fail now clear
-- the stage's worker id with its lease. A failure also ends a run of
-- infrastructure releases: the attempt ran its course, so the runners work.

-- Hands job `job_id` back to its stage's waiting status (2 → 1, 6 → 3),
-- claimable immediately, and gives back the attempt its claim counted (a
-- runner shutting down, not the document, ended it). Returns the new status
-- id. Refused with QL001 unless `lease_token` is the current lease of either
-- stage. For a runner that could not work, see
-- queue.release_job_after_infrastructure_failure.
create or replace function queue.release_job(job_id uuid, lease_token uuid)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  new_status integer;
begin
  update public.extraction_queue q
  set status_id = case when q.status_id = 2 then 1 else 3 end,
      attempts = case when q.status_id = 2 then greatest(q.attempts - 1, 0) else q.attempts end,
      ocr_attempts = case when q.status_id = 6 then greatest(q.ocr_attempts - 1, 0) else q.ocr_attempts end,
      available_at = now(),
      worker_id = case when q.status_id = 2 then null else q.worker_id end,
      ocr_worker_id = case when q.status_id = 6 then null else q.ocr_worker_id end,
      extraction_lease_token = null,
      extraction_lease_expires_at = null,
      ocr_lease_token = null,
      ocr_lease_expires_at = null
  where q.id = release_job.job_id
    and (private.holds_extraction_lease(q, release_job.lease_token)
         or private.holds_ocr_lease(q, release_job.lease_token))
  returning q.status_id into new_status;
  if not found then
    perform private.raise_lease_not_held(release_job.job_id, release_job.lease_token, 'release_job');
  end if;
  return new_status;
end
$$;

-- Records `error` for job `job_id` (in `error_message` for the extraction
-- stage, `ocr_error` for the OCR stage) and ends the runner's lease. A final
-- failure (`is_final`) moves the row to 4 at once; a retryable one sends it
-- back to its stage's waiting status (1 or 3), not claimable before the
-- backoff has passed, or to 4 once the stage's attempts are spent (see
-- private.status_after_failure). Returns the new status id. Refused with
-- QL001 unless `lease_token` is the current lease of either stage.
create or replace function queue.fail_job(job_id uuid, lease_token uuid, error text, is_final boolean)
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

  update public.extraction_queue q
  set status_id = private.status_after_failure(q, fail_job.is_final),
      available_at = now() + private.retry_backoff(case when q.status_id = 2 then q.attempts else q.ocr_attempts end),
      error_message = case when q.status_id = 2 then stored_error else q.error_message end,
      last_error_at = case when q.status_id = 2 then now() else q.last_error_at end,
      ocr_error = case when q.status_id = 6 then stored_error else q.ocr_error end,
      ocr_last_error_at = case when q.status_id = 6 then now() else q.ocr_last_error_at end,
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

revoke all on function queue.release_job(uuid, uuid) from public;
revoke all on function queue.fail_job(uuid, uuid, text, boolean) from public;
grant execute on function queue.release_job(uuid, uuid) to runner, service_role;
grant execute on function queue.fail_job(uuid, uuid, text, boolean) to runner, service_role;
