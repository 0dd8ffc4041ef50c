-- Why: a runner that is shutting down (SIGTERM, Spot reclaim) hands its job
-- back at once instead of letting the lease run out, and the job does not
-- lose an attempt for a failure that was not the document's.

-- Hands job `job_id` back to its stage's waiting status (2 → 1, 6 → 3),
-- claimable immediately, and gives back the attempt its claim counted.
-- Returns the new status id. Refused with QL001 unless `lease_token` is the
-- current lease of either stage.
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

revoke all on function queue.release_job(uuid, uuid) from public;
grant execute on function queue.release_job(uuid, uuid) to runner, service_role;
