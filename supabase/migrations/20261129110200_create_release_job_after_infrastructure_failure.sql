-- Why: a runner that cannot work (Gemini quota, Storage or the registry
-- unreachable, a network error, a browser that will not start) must not
-- spend the document's attempts, but must not get the job back at once
-- either: the fault is usually still there a second later, and every runner
-- would cycle through the queue hitting it. The job waits out a growing
-- backoff, and after max_infrastructure_releases in a row it ends in 4 with
-- a message saying the infrastructure, not the document, kept failing.

-- The stage error stored by an infrastructure release of running row `job`
-- (values before the release) caused by `error`.
create or replace function private.infrastructure_release_message(job public.extraction_queue, error text)
returns text
language sql
immutable
set search_path = ''
as $$
  select case
    when job.infrastructure_releases + 1 >= job.max_infrastructure_releases
      then format('gave up after %s infrastructure failures in a row (the runners could not work; no attempt was spent on the document): %s',
                  job.infrastructure_releases + 1, error)
    else format('released after an infrastructure failure (%s of %s in a row; no attempt spent; claimable again in %s): %s',
                job.infrastructure_releases + 1, job.max_infrastructure_releases,
                private.infrastructure_backoff(job.infrastructure_releases + 1), error)
  end
$$;

-- Hands job `job_id` back after an infrastructure failure described by
-- `error`: gives back the attempt its claim counted, counts one more
-- infrastructure release, and moves it to its stage's waiting status
-- (2 → 1, 6 → 3) claimable after private.infrastructure_backoff, or to 4
-- when this release reaches max_infrastructure_releases. The stage's error
-- column and worker id say what happened. Returns the new status id.
-- Refused with QL001 unless `lease_token` is the current lease of either
-- stage.
create or replace function queue.release_job_after_infrastructure_failure(job_id uuid, lease_token uuid, error text)
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

revoke all on function private.infrastructure_release_message(public.extraction_queue, text) from public;
revoke all on function queue.release_job_after_infrastructure_failure(uuid, uuid, text) from public;
grant execute on function queue.release_job_after_infrastructure_failure(uuid, uuid, text) to runner, service_role;
