-- Why: a registre runner reports a downloaded PDF through this one fenced
-- function, so a runner whose lease lapsed cannot overwrite the result of
-- the runner that took the job over.

-- Records the PDF of job `job_id` at `supabase_path` ("bucket/filename") and
-- ends the extraction stage: index and acte go 2 → 3 (waiting for OCR),
-- plan_cadastraux go 2 → 5 (plans are not OCRed). Returns the new status id.
-- Refused with QL001 unless `lease_token` is the current extraction lease.
create or replace function queue.complete_extraction(job_id uuid, lease_token uuid, supabase_path text)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  new_status integer;
begin
  if complete_extraction.supabase_path is null or complete_extraction.supabase_path !~ '^[^/[:space:]]+/[^/].*$' then
    raise exception 'supabase_path must be "bucket/filename" (e.g. index/123-Montreal-Cadastre_du_Quebec-1700000000.pdf); got %',
      coalesce('"' || complete_extraction.supabase_path || '"', 'null')
      using errcode = 'invalid_parameter_value';
  end if;

  update public.extraction_queue q
  set status_id = case when q.document_source = 'plan_cadastraux' then 5 else 3 end,
      supabase_path = complete_extraction.supabase_path,
      extraction_completed_at = now(),
      extraction_lease_token = null,
      extraction_lease_expires_at = null,
      error_message = null,
      available_at = now()
  where q.id = complete_extraction.job_id
    and private.holds_extraction_lease(q, complete_extraction.lease_token)
  returning q.status_id into new_status;
  if not found then
    perform private.raise_lease_not_held(complete_extraction.job_id, complete_extraction.lease_token, 'complete_extraction');
  end if;
  return new_status;
end
$$;

revoke all on function queue.complete_extraction(uuid, uuid, text) from public;
grant execute on function queue.complete_extraction(uuid, uuid, text) to runner, service_role;
