-- Why: an operator looking at an error needs to tell "the document failed"
-- from "the runner died" and "the infrastructure kept failing": the recent
-- errors view now shows the stage's stalls and the run of infrastructure
-- releases next to its attempts. (Columns added at the end, so
-- create or replace keeps the view's grants.)

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
       e.max_attempts,
       e.stalls,
       e.max_stalls,
       e.infrastructure_releases,
       e.max_infrastructure_releases
from (
  select q.id, 'extraction' as stage, q.status_id, q.document_source, q.document_number,
         q.circonscription_fonciere, q.error_message as error, q.last_error_at as error_at,
         q.attempts, q.max_attempts, q.stalls, q.max_stalls,
         q.infrastructure_releases, q.max_infrastructure_releases
  from public.extraction_queue q
  where q.error_message is not null and q.last_error_at > now() - interval '7 days'
  union all
  select q.id, 'ocr', q.status_id, q.document_source, q.document_number,
         q.circonscription_fonciere, q.ocr_error, q.ocr_last_error_at,
         q.ocr_attempts, q.ocr_max_attempts, q.ocr_stalls, q.max_stalls,
         q.infrastructure_releases, q.max_infrastructure_releases
  from public.extraction_queue q
  where q.ocr_error is not null and q.ocr_last_error_at > now() - interval '7 days'
) e
join public.extraction_status s on s.id = e.status_id
order by e.error_at desc;

comment on view public.extraction_queue_recent_errors is
  'Errors of the last 7 days, newest first: the stage that failed, the message, whether the job gave up (final: status 4), its attempts, its stalls (runner died holding it) and its infrastructure releases in a row (runners could not work), each with its limit.';

revoke all on table public.extraction_queue_recent_errors from public, anon, authenticated;
grant select on table public.extraction_queue_recent_errors to service_role;
