-- Why: the dispatch function decides how many runners of each kind to start
-- from this one query, every minute and on every hint, so it must be cheap:
-- each branch below matches one partial index of extraction_queue.

-- Per job kind (always three rows: registre, index-ocr, acte-ocr):
--   waiting  jobs claimable now (waiting status, `available_at` passed);
--   delayed  jobs in the waiting status still backing off after a failure;
--   running  jobs leased to a runner whose lease has not expired.
create or replace function queue.queue_backlog()
returns table (kind text, waiting bigint, delayed bigint, running bigint)
language sql
stable
security definer
set search_path = ''
as $$
  with waiting_jobs as (
    select 'registre' as kind, q.available_at <= now() as available
    from public.extraction_queue q
    where q.status_id = 1
    union all
    select case q.document_source when 'index' then 'index-ocr' when 'acte' then 'acte-ocr' end,
           q.available_at <= now()
    from public.extraction_queue q
    where q.status_id = 3
  ),
  running_jobs as (
    select 'registre' as kind
    from public.extraction_queue q
    where q.status_id = 2 and q.extraction_lease_expires_at > now()
    union all
    select case q.document_source when 'index' then 'index-ocr' when 'acte' then 'acte-ocr' end
    from public.extraction_queue q
    where q.status_id = 6 and q.ocr_lease_expires_at > now()
  )
  select k.kind,
         (select count(*) from waiting_jobs w where w.kind = k.kind and w.available),
         (select count(*) from waiting_jobs w where w.kind = k.kind and not w.available),
         (select count(*) from running_jobs r where r.kind = k.kind)
  from unnest(array['registre', 'index-ocr', 'acte-ocr']) with ordinality as k (kind, position)
  order by k.position
$$;

revoke all on function queue.queue_backlog() from public;
grant execute on function queue.queue_backlog() to service_role;
