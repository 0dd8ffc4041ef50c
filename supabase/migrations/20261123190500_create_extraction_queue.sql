-- Why: one row per registry document to fetch and then OCR. The column names
-- of the earlier system are kept so existing SQL in Supabase Studio keeps
-- working (`attempts` is now spelled correctly). Added for fencing and
-- visibility: a lease token and expiry per stage, a priority, `available_at`
-- (the not-before time set by retry backoff) and completion timestamps.
-- The constraints below are structural; the input rules with readable
-- messages live in the input-validation migration.

create table if not exists public.extraction_queue (
  id uuid primary key default gen_random_uuid(),

  document_source text not null,
  document_number text not null,
  -- Whitespace (including no-break spaces) removed, so '1 234 567' and
  -- '1234567' are the same lot; generated, so it can never disagree.
  document_number_normalized text generated always as (
    regexp_replace(document_number, '[[:space:]\u00a0\u2007\u202f\ufeff]+', '', 'g')
  ) stored,
  circonscription_fonciere text not null,
  cadastre text,
  designation_secondaire text,
  acte_type text,

  status_id integer not null default 1 references public.extraction_status (id),
  -- Higher runs first; equal priorities run oldest first.
  priority integer not null default 0,
  -- Claims skip rows until this time (retry backoff).
  available_at timestamptz not null default now(),

  -- Extraction stage (registre runner).
  worker_id text,
  processing_started_at timestamptz,
  extraction_lease_token uuid,
  extraction_lease_expires_at timestamptz,
  extraction_completed_at timestamptz,
  attempts integer not null default 0,
  max_attempts integer not null default 3,
  supabase_path text,
  error_message text,
  last_error_at timestamptz,

  -- OCR stage (index-ocr and acte-ocr runners).
  ocr_worker_id text,
  ocr_started_at timestamptz,
  ocr_lease_token uuid,
  ocr_lease_expires_at timestamptz,
  ocr_completed_at timestamptz,
  ocr_attempts integer not null default 0,
  ocr_max_attempts integer not null default 3,
  file_content text,
  boosted_file_content text,
  ocr_error text,
  ocr_last_error_at timestamptz,

  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),

  constraint extraction_queue_attempts_check
    check (attempts >= 0 and max_attempts >= 1 and ocr_attempts >= 0 and ocr_max_attempts >= 1),
  -- A running row always carries its stage's lease, and only a running row
  -- does: a row in 2 or 6 without a lease could never be completed or reaped.
  constraint extraction_queue_extraction_lease_check
    check (
      (status_id = 2) = (extraction_lease_token is not null)
      and (extraction_lease_token is null) = (extraction_lease_expires_at is null)
    ),
  constraint extraction_queue_ocr_lease_check
    check (
      (status_id = 6) = (ocr_lease_token is not null)
      and (ocr_lease_token is null) = (ocr_lease_expires_at is null)
    )
);

comment on table public.extraction_queue is
  'Registry documents to fetch and OCR. Change status only through the functions in schema queue; statuses 4 and 5 are left only through queue.retry_job.';
comment on column public.extraction_queue.available_at is
  'Claims skip the row until this time: set by retry backoff after a retryable failure.';
comment on column public.extraction_queue.extraction_lease_token is
  'Fencing token of the registre runner holding the row (status 2); every write by that runner must present it.';
comment on column public.extraction_queue.ocr_lease_token is
  'Fencing token of the OCR runner holding the row (status 6); every write by that runner must present it.';

-- Claim order per stage; `available_at` is included so the backlog count
-- can be answered from the index.
create index if not exists extraction_queue_waiting_extraction_idx
  on public.extraction_queue (priority desc, created_at, id) include (available_at)
  where status_id = 1;
create index if not exists extraction_queue_waiting_ocr_idx
  on public.extraction_queue (document_source, priority desc, created_at, id) include (available_at)
  where status_id = 3;
-- Running rows by lease expiry: the reaper and the backlog's running count.
create index if not exists extraction_queue_extraction_lease_idx
  on public.extraction_queue (extraction_lease_expires_at)
  where status_id = 2;
create index if not exists extraction_queue_ocr_lease_idx
  on public.extraction_queue (document_source, ocr_lease_expires_at)
  where status_id = 6;
create index if not exists extraction_queue_status_source_idx
  on public.extraction_queue (status_id, document_source);
-- French full-text search on the OCR text, as the earlier system had.
create index if not exists extraction_queue_file_content_fts_idx
  on public.extraction_queue using gin (to_tsvector('french'::regconfig, file_content));
create index if not exists extraction_queue_boosted_file_content_fts_idx
  on public.extraction_queue using gin (to_tsvector('french'::regconfig, boosted_file_content));

-- Keeps updated_at truthful whoever writes the row.
create or replace function private.touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;

drop trigger if exists extraction_queue_touch_updated_at on public.extraction_queue;
create trigger extraction_queue_touch_updated_at
  before update on public.extraction_queue
  for each row execute function private.touch_updated_at();

revoke all on function private.touch_updated_at() from public;

alter table public.extraction_queue enable row level security;
revoke all on table public.extraction_queue from public, anon, authenticated;
-- The backend (service key) inserts jobs; grant it what Supabase grants by
-- default so the local cluster behaves the same.
grant select, insert, update, delete on table public.extraction_queue to service_role;
