-- Why: a lease is short so that a crashed runner's job comes back quickly;
-- a live runner keeps its job by renewing the lease while it works.

-- Extends the lease of job `job_id` (extraction or OCR stage) to
-- `lease_seconds` from now and returns the new expiry. Refused with QL001
-- when `lease_token` is not the current, unexpired lease: the runner must
-- stop, because the job may already belong to someone else.
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
  perform private.require_between(heartbeat_job.lease_seconds, 1, 86400, 'lease_seconds');
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

revoke all on function queue.heartbeat_job(uuid, uuid, integer) from public;
grant execute on function queue.heartbeat_job(uuid, uuid, integer) to runner, service_role;
