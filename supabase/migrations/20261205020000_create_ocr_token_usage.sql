-- Why: Gemini bills and rate-limits per model, input, output and thinking
-- tokens apart, and nothing recorded what each job spent: staff could not
-- tell what a document cost, nor which model or environment drew the
-- quota. The OCR runner records, for each job it works on, the tokens of
-- each model it called (one row per job attempt and model, what
-- usageMetadata reported: promptTokenCount, candidatesTokenCount,
-- thoughtsTokenCount), fenced by the job's OCR lease like every runner
-- write; the view sums them per day, model and environment for Studio.

create table if not exists public.ocr_token_usage (
  id bigint generated always as identity primary key,
  job_id uuid not null references public.extraction_queue (id) on delete cascade,
  environment text not null,
  model text not null,
  calls integer not null,
  input_tokens bigint not null,
  output_tokens bigint not null,
  thinking_tokens bigint not null,
  recorded_at timestamptz not null default now(),
  constraint ocr_token_usage_environment_check check (environment in ('dev', 'staging', 'prod')),
  constraint ocr_token_usage_amounts_check check (calls >= 0 and input_tokens >= 0 and output_tokens >= 0 and thinking_tokens >= 0)
);

comment on table public.ocr_token_usage is
  'Gemini tokens per OCR job attempt and model (input, output, thinking, as usageMetadata reported them). Written only through queue.record_ocr_tokens; summed per day in public.ocr_tokens_by_day.';

create index if not exists ocr_token_usage_job_idx on public.ocr_token_usage (job_id);
create index if not exists ocr_token_usage_recorded_at_idx on public.ocr_token_usage (recorded_at);

alter table public.ocr_token_usage enable row level security;
revoke all on table public.ocr_token_usage from public, anon, authenticated;
revoke all on sequence public.ocr_token_usage_id_seq from public, anon, authenticated;
grant select on table public.ocr_token_usage to service_role;

-- Records what one attempt of job `job_id` spent, `usage` being a JSON array
-- of {"model", "calls", "input_tokens", "output_tokens", "thinking_tokens"}.
-- Refused with QL001 unless `lease_token` is the job's current OCR lease.
create or replace function queue.record_ocr_tokens(job_id uuid, lease_token uuid, environment text, usage jsonb)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  held boolean;
  recorded integer;
begin
  if jsonb_typeof(record_ocr_tokens.usage) is distinct from 'array' then
    raise exception 'usage must be a JSON array of {model, calls, input_tokens, output_tokens, thinking_tokens}'
      using errcode = 'invalid_parameter_value';
  end if;
  select private.holds_ocr_lease(q, record_ocr_tokens.lease_token) into held
  from public.extraction_queue q
  where q.id = record_ocr_tokens.job_id;
  if held is not true then
    perform private.raise_lease_not_held(record_ocr_tokens.job_id, record_ocr_tokens.lease_token, 'record_ocr_tokens');
  end if;
  insert into public.ocr_token_usage (job_id, environment, model, calls, input_tokens, output_tokens, thinking_tokens)
  select record_ocr_tokens.job_id, record_ocr_tokens.environment, u.model, u.calls, u.input_tokens, u.output_tokens, u.thinking_tokens
  from jsonb_to_recordset(record_ocr_tokens.usage)
    as u(model text, calls integer, input_tokens bigint, output_tokens bigint, thinking_tokens bigint);
  get diagnostics recorded = row_count;
  return recorded;
end
$$;

revoke all on function queue.record_ocr_tokens(uuid, uuid, text, jsonb) from public;
grant execute on function queue.record_ocr_tokens(uuid, uuid, text, jsonb) to runner, service_role;

-- Tokens per day (UTC), model and environment, for Studio.
create or replace view public.ocr_tokens_by_day
with (security_invoker = true)
as
select
  (u.recorded_at at time zone 'UTC')::date as day,
  u.environment,
  u.model,
  count(distinct u.job_id) as jobs,
  sum(u.calls) as calls,
  sum(u.input_tokens) as input_tokens,
  sum(u.output_tokens) as output_tokens,
  sum(u.thinking_tokens) as thinking_tokens
from public.ocr_token_usage u
group by 1, 2, 3;

comment on view public.ocr_tokens_by_day is
  'Gemini tokens per UTC day, environment and model: jobs, calls, input, output and thinking tokens (from public.ocr_token_usage).';

revoke all on table public.ocr_tokens_by_day from public, anon, authenticated;
grant select on table public.ocr_tokens_by_day to service_role;
