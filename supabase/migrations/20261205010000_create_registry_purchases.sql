-- Why: every consultation of the registry is billed to the account's payment
-- card (about 1,50 $ a document, per the public SIRF client validated on the
-- live site 2026-05-21), and the earlier system bought the same document
-- again on every retry. Each purchase is recorded here, a request identical
-- to one completed recently reuses its stored PDF (and its OCR text once
-- done) instead of buying again, a retry after the purchase point resumes
-- from what was bought, and a daily spend cap pauses registre dispatch.

create table if not exists public.registry_purchases (
  id bigint generated always as identity primary key,
  job_id uuid references public.extraction_queue (id) on delete set null,
  account_id uuid references public.registry_accounts (id) on delete set null,
  environment text not null,
  purchased_at timestamptz not null default now(),
  document_source text not null,
  document_number_normalized text not null,
  circonscription_fonciere text not null,
  cadastre text,
  designation_secondaire text,
  acte_type text,
  -- Where the bought PDF was stored; null until the upload succeeded.
  supabase_path text,
  amount_cents integer not null check (amount_cents >= 0)
);

comment on table public.registry_purchases is
  'One row per document bought from the registry (row, account, environment, time, document, price). See registry_spend_per_day.';

create index if not exists registry_purchases_job_idx on public.registry_purchases (job_id);
create index if not exists registry_purchases_day_idx on public.registry_purchases (environment, purchased_at);

alter table public.registry_purchases enable row level security;
revoke all on table public.registry_purchases from public, anon, authenticated;
grant select on table public.registry_purchases to service_role;

-- The spend policy of this environment's database: the daily cap and how long
-- a completed identical request is reused. Edit the row in Studio.
create table if not exists public.registre_spend_policy (
  environment text primary key,
  -- Null: no cap.
  daily_cap_cents integer check (daily_cap_cents is null or daily_cap_cents >= 0),
  reuse_window interval not null default interval '30 days',
  -- The registry's day: Quebec time.
  day_time_zone text not null default 'America/Toronto'
);

comment on table public.registre_spend_policy is
  'Per environment: daily_cap_cents (null = none) pauses registre dispatch once reached; reuse_window: an identical request completed this recently reuses the stored PDF.';

alter table public.registre_spend_policy enable row level security;
revoke all on table public.registre_spend_policy from public, anon, authenticated;
grant select on table public.registre_spend_policy to service_role;

create or replace view public.registry_spend_per_day
with (security_invoker = true) as
select (p.purchased_at at time zone coalesce(sp.day_time_zone, 'America/Toronto'))::date as day,
       p.environment,
       a.username as account,
       count(*) as documents,
       sum(p.amount_cents) / 100.0 as spend_dollars
from public.registry_purchases p
left join public.registry_accounts a on a.id = p.account_id
left join public.registre_spend_policy sp on sp.environment = p.environment
group by 1, 2, 3
order by 1 desc, 2, 3;

comment on view public.registry_spend_per_day is 'Registry spend per day (Quebec time), environment and account.';
grant select on public.registry_spend_per_day to service_role;

-- Today's spend of `environment` against its cap: `paused` once the cap is reached.
create or replace function queue.registre_spend_today(environment text)
returns table (spent_cents bigint, cap_cents integer, paused boolean)
language sql
stable
security definer
set search_path = ''
as $$
  with policy as (
    select sp.daily_cap_cents, sp.day_time_zone
    from public.registre_spend_policy sp
    where sp.environment = registre_spend_today.environment
  ),
  spent as (
    select coalesce(sum(p.amount_cents), 0)::bigint as cents
    from public.registry_purchases p
    where p.environment = registre_spend_today.environment
      and (p.purchased_at at time zone coalesce((select day_time_zone from policy), 'America/Toronto'))::date
        = (now() at time zone coalesce((select day_time_zone from policy), 'America/Toronto'))::date
  )
  select spent.cents,
         (select daily_cap_cents from policy),
         coalesce(spent.cents >= (select daily_cap_cents from policy), false)
  from spent
$$;

revoke all on function queue.registre_spend_today(text) from public;
grant execute on function queue.registre_spend_today(text) to runner, service_role;

-- Records that the runner holding job `job_id` (fenced by `lease_token`)
-- bought its document with `account_id`. Returns the purchase id.
create or replace function queue.record_registry_purchase(job_id uuid, lease_token uuid, account_id uuid, environment text, amount_cents integer)
returns bigint
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  purchase_id bigint;
begin
  insert into public.registry_purchases (job_id, account_id, environment, document_source, document_number_normalized,
                                         circonscription_fonciere, cadastre, designation_secondaire, acte_type, amount_cents)
  select q.id, record_registry_purchase.account_id, record_registry_purchase.environment, q.document_source, q.document_number_normalized,
         q.circonscription_fonciere, q.cadastre, q.designation_secondaire, q.acte_type, record_registry_purchase.amount_cents
  from public.extraction_queue q
  where q.id = record_registry_purchase.job_id
    and private.holds_extraction_lease(q, record_registry_purchase.lease_token)
  returning id into purchase_id;
  if not found then
    perform private.raise_lease_not_held(record_registry_purchase.job_id, record_registry_purchase.lease_token, 'record_registry_purchase');
  end if;
  return purchase_id;
end
$$;

revoke all on function queue.record_registry_purchase(uuid, uuid, uuid, text, integer) from public;
grant execute on function queue.record_registry_purchase(uuid, uuid, uuid, text, integer) to runner, service_role;

-- Records where purchase `purchase_id`'s PDF was stored.
create or replace function queue.record_purchase_storage(purchase_id bigint, supabase_path text)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  update public.registry_purchases p set supabase_path = record_purchase_storage.supabase_path where p.id = record_purchase_storage.purchase_id
$$;

revoke all on function queue.record_purchase_storage(bigint, text) from public;
grant execute on function queue.record_purchase_storage(bigint, text) to runner, service_role;

-- A PDF job `job_id` already has, without buying: first one this job bought
-- on an earlier attempt (resume after the purchase point), else the stored
-- PDF of an identical request (same source, number, circonscription,
-- cadastre, désignation, acte type) completed within the environment's reuse
-- window, one already OCRed first. `source_job_id` is that request's row
-- (null for the job's own purchase); `has_text` says its OCR text can be
-- copied too.
create or replace function queue.find_reusable_document(job_id uuid, environment text)
returns table (supabase_path text, source_job_id uuid, has_text boolean)
language sql
stable
security definer
set search_path = ''
as $$
  with job as (select * from public.extraction_queue q where q.id = find_reusable_document.job_id),
  own as (
    select p.supabase_path, null::uuid as source_job_id, false as has_text, 0 as rank, p.purchased_at as at
    from public.registry_purchases p
    where p.job_id = find_reusable_document.job_id and p.supabase_path is not null
  ),
  identical as (
    select q.supabase_path, q.id, (q.status_id = 5 and q.file_content is not null),
           case when q.status_id = 5 and q.file_content is not null then 1 else 2 end, q.extraction_completed_at
    from public.extraction_queue q, job j
    where q.id <> j.id
      and q.status_id in (3, 5, 6)
      and q.supabase_path is not null
      and q.document_source = j.document_source
      and q.document_number_normalized = j.document_number_normalized
      and q.circonscription_fonciere = j.circonscription_fonciere
      and q.cadastre is not distinct from j.cadastre
      and coalesce(q.designation_secondaire, '') = coalesce(j.designation_secondaire, '')
      and q.acte_type is not distinct from j.acte_type
      and q.extraction_completed_at > now() - coalesce(
        (select sp.reuse_window from public.registre_spend_policy sp where sp.environment = find_reusable_document.environment),
        interval '30 days')
  )
  select supabase_path, source_job_id, has_text from (select * from own union all select * from identical) found
  order by rank, at desc nulls last
  limit 1
$$;

revoke all on function queue.find_reusable_document(uuid, text) from public;
grant execute on function queue.find_reusable_document(uuid, text) to runner, service_role;

-- Copies the OCR text of request `source_job_id` into job `job_id` (fenced
-- by `lease_token`), so completing the job with the same PDF ends it at 5
-- without a second OCR.
create or replace function queue.copy_ocr_text(job_id uuid, lease_token uuid, source_job_id uuid)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  update public.extraction_queue q
  set file_content = s.file_content,
      boosted_file_content = s.boosted_file_content
  from public.extraction_queue s
  where q.id = copy_ocr_text.job_id
    and s.id = copy_ocr_text.source_job_id
    and s.status_id = 5
    and private.holds_extraction_lease(q, copy_ocr_text.lease_token);
  if not found then
    perform private.raise_lease_not_held(copy_ocr_text.job_id, copy_ocr_text.lease_token, 'copy_ocr_text');
  end if;
end
$$;

revoke all on function queue.copy_ocr_text(uuid, uuid, uuid) from public;
grant execute on function queue.copy_ocr_text(uuid, uuid, uuid) to runner, service_role;

-- The environment's daily cap reached: a kind of its own, so staff see the
-- jobs wait for money, not for the registry.
insert into public.error_kind (name, whose, description) values
  ('spend_cap', 'infrastructure', 'the environment''s daily registry spend cap is reached (registre_spend_policy); no attempt spent, registre dispatch paused until the next day or a higher cap')
on conflict (name) do update set whose = excluded.whose, description = excluded.description;
