-- Why: a registre job records its purchase, then uploads the PDF; when the
-- upload fails (Storage down), the bytes the account paid for were kept
-- nowhere, and the retry bought the document again. Now the runner parks
-- the bought PDF on its purchase row, fenced by the job's lease, and the
-- retry stores the parked bytes instead of buying; the bytes are dropped
-- as soon as the PDF is stored.

alter table public.registry_purchases
  add column if not exists parked_pdf bytea;

comment on column public.registry_purchases.parked_pdf is
  'The bought PDF while Storage could not take it (null once stored): a retry stores these bytes instead of buying again.';

-- Parks `pdf` on purchase `purchase_id` of job `job_id`, whose lease the
-- caller must hold (`lease_token`). Refused with QL001 otherwise.
create or replace function queue.park_purchased_pdf(job_id uuid, lease_token uuid, purchase_id bigint, pdf bytea)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  if park_purchased_pdf.pdf is null or length(park_purchased_pdf.pdf) = 0 then
    raise exception 'pdf is required: the bytes bought from the registry' using errcode = 'invalid_parameter_value';
  end if;
  update public.registry_purchases p
  set parked_pdf = park_purchased_pdf.pdf
  from public.extraction_queue q
  where p.id = park_purchased_pdf.purchase_id
    and p.job_id = park_purchased_pdf.job_id
    and q.id = p.job_id
    and private.holds_extraction_lease(q, park_purchased_pdf.lease_token);
  if not found then
    perform private.raise_lease_not_held(park_purchased_pdf.job_id, park_purchased_pdf.lease_token, 'park_purchased_pdf');
  end if;
end
$$;

-- The parked PDF of job `job_id` (its latest purchase whose PDF is not
-- stored yet), for the holder of its lease; no row when none is parked.
create or replace function queue.parked_purchased_pdf(job_id uuid, lease_token uuid)
returns table (purchase_id bigint, pdf bytea)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from public.extraction_queue q where q.id = parked_purchased_pdf.job_id and private.holds_extraction_lease(q, parked_purchased_pdf.lease_token)) then
    perform private.raise_lease_not_held(parked_purchased_pdf.job_id, parked_purchased_pdf.lease_token, 'parked_purchased_pdf');
  end if;
  return query
  select p.id, p.parked_pdf
  from public.registry_purchases p
  where p.job_id = parked_purchased_pdf.job_id and p.parked_pdf is not null and p.supabase_path is null
  order by p.purchased_at desc
  limit 1;
end
$$;

-- Stored: the path is recorded and the parked bytes, if any, dropped.
create or replace function queue.record_purchase_storage(purchase_id bigint, supabase_path text)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  update public.registry_purchases p
  set supabase_path = record_purchase_storage.supabase_path, parked_pdf = null
  where p.id = record_purchase_storage.purchase_id
$$;

revoke all on function queue.park_purchased_pdf(uuid, uuid, bigint, bytea) from public;
revoke all on function queue.parked_purchased_pdf(uuid, uuid) from public;
grant execute on function queue.park_purchased_pdf(uuid, uuid, bigint, bytea) to runner, service_role;
grant execute on function queue.parked_purchased_pdf(uuid, uuid) to runner, service_role;
