-- Why (issue 19 item 13): when the reply to complete_*_and_claim_next was
-- lost (a pooler restart, a reset socket), the runner's retry found its
-- lease gone (QL001: the completion had landed) and never learned which job
-- the first call had claimed for it: that job sat leased to nobody until
-- the reaper took it back, counted as a stall. Each call now leaves a
-- receipt under the completed lease's token (a random uuid only its holder
-- knows); a retry with the same token gets the first call's answer again,
-- the next job's claim included while it is still leased under the same
-- token. Receipts older than an hour are deleted as new ones are written.

create table if not exists private.completion_receipts (
  completed_lease_token uuid primary key,
  completed_status_id integer not null,
  next_job_id uuid,
  next_lease_token uuid,
  created_at timestamptz not null default now()
);
create index if not exists completion_receipts_created_at_idx on private.completion_receipts (created_at);
alter table private.completion_receipts enable row level security;
revoke all on table private.completion_receipts from public;
comment on table private.completion_receipts is
  'What each complete_*_and_claim_next call answered, by the completed lease token, so a retry after a lost reply gets the same answer (kept an hour).';

-- The answer a receipt recorded: the completed status, and the next job's
-- claim columns while it is still leased under the recorded token (else
-- nulls: it was released or reaped meanwhile, and the caller simply has no
-- next job).
create or replace function private.replay_completion_receipt(receipt private.completion_receipts, stage text)
returns table (
  completed_status_id integer,
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
language sql
stable
security definer
set search_path = ''
as $$
  select receipt.completed_status_id, q.id,
         case stage when 'registre' then q.extraction_lease_token else q.ocr_lease_token end,
         case stage when 'registre' then q.extraction_lease_expires_at else q.ocr_lease_expires_at end,
         q.document_source, q.document_number, q.document_number_normalized,
         q.circonscription_fonciere, q.cadastre, q.designation_secondaire, q.acte_type, q.supabase_path,
         case stage when 'registre' then q.attempts else q.ocr_attempts end
  from (select) as always_one_row
  left join public.extraction_queue q
    on q.id = receipt.next_job_id
   and receipt.next_lease_token is not null
   and (case stage when 'registre' then q.extraction_lease_token else q.ocr_lease_token end) = receipt.next_lease_token
   and (case stage when 'registre' then q.extraction_lease_expires_at else q.ocr_lease_expires_at end) > now()
$$;
revoke all on function private.replay_completion_receipt(private.completion_receipts, text) from public;

create or replace function queue.complete_extraction_and_claim_next(
  completed_job_id uuid, completed_lease_token uuid, completed_supabase_path text, worker_id text, lease_seconds integer
)
returns table (
  completed_status_id integer,
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
  receipt private.completion_receipts;
  completed integer;
  next_row record;
begin
  select * into receipt from private.completion_receipts r
  where r.completed_lease_token = complete_extraction_and_claim_next.completed_lease_token;
  if found then
    return query select * from private.replay_completion_receipt(receipt, 'registre');
    return;
  end if;
  completed := queue.complete_extraction(
    complete_extraction_and_claim_next.completed_job_id,
    complete_extraction_and_claim_next.completed_lease_token,
    complete_extraction_and_claim_next.completed_supabase_path);
  select * into next_row from queue.claim_jobs('registre', complete_extraction_and_claim_next.worker_id, 1,
                                               complete_extraction_and_claim_next.lease_seconds);
  delete from private.completion_receipts r where r.created_at < now() - interval '1 hour';
  insert into private.completion_receipts (completed_lease_token, completed_status_id, next_job_id, next_lease_token)
  values (complete_extraction_and_claim_next.completed_lease_token, completed, next_row.id, next_row.lease_token);
  return query
    select completed, next_row.id, next_row.lease_token, next_row.lease_expires_at, next_row.document_source,
           next_row.document_number, next_row.document_number_normalized, next_row.circonscription_fonciere,
           next_row.cadastre, next_row.designation_secondaire, next_row.acte_type, next_row.supabase_path, next_row.attempt;
end
$$;

create or replace function queue.complete_ocr_and_claim_next(
  completed_job_id uuid, completed_lease_token uuid, file_content text, boosted_file_content text,
  kind text, worker_id text, lease_seconds integer
)
returns table (
  completed_status_id integer,
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
  receipt private.completion_receipts;
  completed integer;
  next_row record;
begin
  if complete_ocr_and_claim_next.kind is null or complete_ocr_and_claim_next.kind not in ('index-ocr', 'acte-ocr') then
    raise exception 'kind must be index-ocr or acte-ocr; got %', coalesce('"' || complete_ocr_and_claim_next.kind || '"', 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  select * into receipt from private.completion_receipts r
  where r.completed_lease_token = complete_ocr_and_claim_next.completed_lease_token;
  if found then
    return query select * from private.replay_completion_receipt(receipt, 'ocr');
    return;
  end if;
  completed := queue.complete_ocr(
    complete_ocr_and_claim_next.completed_job_id,
    complete_ocr_and_claim_next.completed_lease_token,
    complete_ocr_and_claim_next.file_content,
    complete_ocr_and_claim_next.boosted_file_content);
  select * into next_row from queue.claim_jobs(complete_ocr_and_claim_next.kind, complete_ocr_and_claim_next.worker_id, 1,
                                               complete_ocr_and_claim_next.lease_seconds);
  delete from private.completion_receipts r where r.created_at < now() - interval '1 hour';
  insert into private.completion_receipts (completed_lease_token, completed_status_id, next_job_id, next_lease_token)
  values (complete_ocr_and_claim_next.completed_lease_token, completed, next_row.id, next_row.lease_token);
  return query
    select completed, next_row.id, next_row.lease_token, next_row.lease_expires_at, next_row.document_source,
           next_row.document_number, next_row.document_number_normalized, next_row.circonscription_fonciere,
           next_row.cadastre, next_row.designation_secondaire, next_row.acte_type, next_row.supabase_path, next_row.attempt;
end
$$;

revoke all on function queue.complete_extraction_and_claim_next(uuid, uuid, text, text, integer) from public;
revoke all on function queue.complete_ocr_and_claim_next(uuid, uuid, text, text, text, text, integer) from public;
grant execute on function queue.complete_extraction_and_claim_next(uuid, uuid, text, text, integer) to runner, service_role;
grant execute on function queue.complete_ocr_and_claim_next(uuid, uuid, text, text, text, text, integer) to runner, service_role;
