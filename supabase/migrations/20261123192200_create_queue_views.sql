-- Why: operators watch the pipeline in Supabase Studio. These views answer
-- the daily questions (what is waiting, what is stuck, what failed, how
-- fast are we going, which registry accounts work) with names instead of
-- ids. They run with the caller's rights (security_invoker), so they reveal
-- nothing the caller could not read from the tables, and no client role may
-- read them.

create or replace view public.extraction_queue_by_status
with (security_invoker = true)
as
select s.id as status_id,
       s.name as status,
       q.document_source,
       count(*) as jobs,
       min(q.created_at) as oldest_created_at,
       max(q.updated_at) as last_changed_at
from public.extraction_queue q
join public.extraction_status s on s.id = q.status_id
group by s.id, s.name, q.document_source
order by s.id, q.document_source;

comment on view public.extraction_queue_by_status is
  'Jobs per status (by name) and document source, with the oldest job and the last change of each group.';

-- Stage limits: well beyond a legitimate run (a registry result can take
-- minutes; a 30-page index is about 30 Gemini calls), so a row listed here
-- deserves a look even while its lease is still being renewed.
create or replace view public.extraction_queue_stuck_jobs
with (security_invoker = true)
as
select r.id,
       r.kind,
       s.name as status,
       r.document_source,
       r.document_number,
       r.circonscription_fonciere,
       r.runner,
       r.started_at,
       now() - r.started_at as running_for,
       r.lease_expires_at,
       case when r.lease_expires_at <= now()
         then 'lease expired (runner gone; the reaper will requeue it)'
         else format('running longer than %s', r.stage_limit)
       end as why_stuck
from (
  select q.id, 'registre' as kind, q.status_id, q.document_source, q.document_number,
         q.circonscription_fonciere, q.worker_id as runner, q.processing_started_at as started_at,
         q.extraction_lease_expires_at as lease_expires_at, interval '20 minutes' as stage_limit
  from public.extraction_queue q
  where q.status_id = 2
  union all
  select q.id, q.document_source || '-ocr', q.status_id, q.document_source, q.document_number,
         q.circonscription_fonciere, q.ocr_worker_id, q.ocr_started_at,
         q.ocr_lease_expires_at,
         case q.document_source when 'index' then interval '45 minutes' else interval '15 minutes' end
  from public.extraction_queue q
  where q.status_id = 6
) r
join public.extraction_status s on s.id = r.status_id
where r.lease_expires_at <= now()
   or now() - r.started_at > r.stage_limit
order by r.started_at;

comment on view public.extraction_queue_stuck_jobs is
  'Running jobs whose lease has expired, or that have run longer than their stage allows (registre 20 min, index OCR 45 min, acte OCR 15 min).';

create or replace view public.extraction_queue_recent_errors
with (security_invoker = true)
as
select e.id,
       e.stage,
       s.name as status,
       e.status_id = 4 as final,
       e.document_source,
       e.document_number,
       e.circonscription_fonciere,
       e.error,
       e.error_at,
       e.attempts,
       e.max_attempts
from (
  select q.id, 'extraction' as stage, q.status_id, q.document_source, q.document_number,
         q.circonscription_fonciere, q.error_message as error, q.last_error_at as error_at,
         q.attempts, q.max_attempts
  from public.extraction_queue q
  where q.error_message is not null and q.last_error_at > now() - interval '7 days'
  union all
  select q.id, 'ocr', q.status_id, q.document_source, q.document_number,
         q.circonscription_fonciere, q.ocr_error, q.ocr_last_error_at,
         q.ocr_attempts, q.ocr_max_attempts
  from public.extraction_queue q
  where q.ocr_error is not null and q.ocr_last_error_at > now() - interval '7 days'
) e
join public.extraction_status s on s.id = e.status_id
order by e.error_at desc;

comment on view public.extraction_queue_recent_errors is
  'Errors of the last 7 days, newest first: the stage that failed, the message, whether the job gave up (final: status 4) and its attempts.';

create or replace view public.extraction_queue_throughput_per_hour
with (security_invoker = true)
as
select date_trunc('hour', t.at) as hour,
       t.kind,
       count(*) filter (where t.outcome = 'completed') as completed,
       count(*) filter (where t.outcome = 'failed') as failed
from (
  select q.extraction_completed_at as at, 'registre' as kind, 'completed' as outcome
  from public.extraction_queue q
  where q.extraction_completed_at > now() - interval '48 hours'
  union all
  select q.ocr_completed_at, q.document_source || '-ocr', 'completed'
  from public.extraction_queue q
  where q.ocr_completed_at > now() - interval '48 hours'
  union all
  select coalesce(q.ocr_last_error_at, q.last_error_at),
         case when q.ocr_last_error_at is not null then q.document_source || '-ocr' else 'registre' end,
         'failed'
  from public.extraction_queue q
  where q.status_id = 4
    and coalesce(q.ocr_last_error_at, q.last_error_at) > now() - interval '48 hours'
) t
group by 1, 2
order by 1 desc, 2;

comment on view public.extraction_queue_throughput_per_hour is
  'Last 48 hours, per hour and job kind: stages completed (registre = PDFs downloaded, *-ocr = texts extracted) and jobs that failed for good.';

create or replace view public.registry_account_health
with (security_invoker = true)
as
select a.id,
       a.username,
       a.is_active,
       private.registry_account_is_healthy(a) as healthy,
       coalesce(a.lease_expires_at > now(), false) as in_use,
       case when a.lease_expires_at > now() then a.leased_by end as leased_by,
       case when a.lease_expires_at > now() then a.lease_expires_at end as lease_expires_at,
       a.last_used_at,
       a.failure_count,
       a.last_failure_at,
       a.last_error
from public.registry_accounts a
order by a.username;

comment on view public.registry_account_health is
  'Registry accounts without their passwords: active, healthy (fewer than 3 consecutive failures, or the last one over an hour ago), who holds each one now, last use and last error.';

revoke all on table public.extraction_queue_by_status from public, anon, authenticated;
revoke all on table public.extraction_queue_stuck_jobs from public, anon, authenticated;
revoke all on table public.extraction_queue_recent_errors from public, anon, authenticated;
revoke all on table public.extraction_queue_throughput_per_hour from public, anon, authenticated;
revoke all on table public.registry_account_health from public, anon, authenticated;
grant select on table public.extraction_queue_by_status to service_role;
grant select on table public.extraction_queue_stuck_jobs to service_role;
grant select on table public.extraction_queue_recent_errors to service_role;
grant select on table public.extraction_queue_throughput_per_hour to service_role;
grant select on table public.registry_account_health to service_role;
-- The health view calls the health rule with the reader's rights.
grant execute on function private.registry_account_is_healthy(public.registry_accounts) to service_role;
