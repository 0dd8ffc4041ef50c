-- Why: the fleet (which tasks run, of which kind, holding how much vCPU and
-- RAM) lived only in the Upstash ledger, which a Supabase Studio user cannot
-- query. Dispatch records every task it starts here, each runner keeps its
-- row current (started, heartbeats, exit and why), and the views below show
-- the tasks running now. Each environment's database records its own tasks;
-- the ledger stays the authority on capacity, these rows are for watching.

create table if not exists public.runner_tasks (
  -- The ledger lease id, also the RunTask clientToken: one per task.
  lease_id text primary key,
  kind text not null,
  environment text not null,
  -- ECS task ARN; null when the runner reported before dispatch did.
  task_arn text,
  -- What the task holds in the ledger while it runs.
  vcpu numeric(10, 3) not null,
  ram_gb numeric(10, 3) not null,
  dispatched_at timestamptz not null default now(),
  runner_started_at timestamptz,
  last_heartbeat_at timestamptz,
  -- The ledger lease's expiry as last renewed: past it, the capacity is someone else's.
  lease_expires_at timestamptz,
  worker_id text,
  finished_at timestamptz,
  exit_reason text,
  exit_code integer,
  constraint runner_tasks_kind_check check (kind in ('registre', 'index-ocr', 'acte-ocr')),
  constraint runner_tasks_environment_check check (environment in ('dev', 'staging', 'prod')),
  constraint runner_tasks_amounts_check check (vcpu >= 0 and ram_gb >= 0)
);

comment on table public.runner_tasks is
  'Every runner task dispatch started: kind, environment, ECS task ARN, ledger lease, capacity held, runner start, last heartbeat, exit and its reason. Written only through the queue.record_task_* functions.';

create index if not exists runner_tasks_unfinished_idx on public.runner_tasks (kind, environment) where finished_at is null;
create index if not exists runner_tasks_finished_at_idx on public.runner_tasks (finished_at) where finished_at is not null;

alter table public.runner_tasks enable row level security;
revoke all on table public.runner_tasks from public, anon, authenticated;
grant select on table public.runner_tasks to service_role;

-- Dispatch, right after RunTask: the task exists, its runner has not
-- reported yet. Also drops rows finished more than 7 days ago, so the table
-- stays small without a cron job of its own.
create or replace function queue.record_task_started(
  lease_id text, kind text, environment text, task_arn text,
  vcpu numeric, ram_gb numeric, lease_expires_at timestamptz
)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  delete from public.runner_tasks t where t.finished_at < now() - interval '7 days';
  insert into public.runner_tasks as t (lease_id, kind, environment, task_arn, vcpu, ram_gb, lease_expires_at)
  values (record_task_started.lease_id, record_task_started.kind, record_task_started.environment,
          record_task_started.task_arn, record_task_started.vcpu, record_task_started.ram_gb,
          record_task_started.lease_expires_at)
  on conflict on constraint runner_tasks_pkey do update
    set task_arn = coalesce(excluded.task_arn, t.task_arn);
$$;

-- The runner, when it starts and at each renewal of its ledger lease. Inserts
-- the row when dispatch's record was lost (dispatch never fails a start over
-- bookkeeping). A finished row stays finished.
create or replace function queue.record_task_heartbeat(
  lease_id text, kind text, environment text, worker_id text,
  vcpu numeric, ram_gb numeric, lease_expires_at timestamptz
)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  insert into public.runner_tasks as t
    (lease_id, kind, environment, worker_id, vcpu, ram_gb, runner_started_at, last_heartbeat_at, lease_expires_at)
  values (record_task_heartbeat.lease_id, record_task_heartbeat.kind, record_task_heartbeat.environment,
          record_task_heartbeat.worker_id, record_task_heartbeat.vcpu, record_task_heartbeat.ram_gb,
          now(), now(), record_task_heartbeat.lease_expires_at)
  on conflict on constraint runner_tasks_pkey do update
    set worker_id = excluded.worker_id,
        runner_started_at = coalesce(t.runner_started_at, now()),
        last_heartbeat_at = now(),
        lease_expires_at = excluded.lease_expires_at
    where t.finished_at is null;
$$;

-- The runner, as it exits: why (idle, drained, lease lost, …) and its exit code.
create or replace function queue.record_task_finished(lease_id text, exit_reason text, exit_code integer)
returns void
language sql
volatile
security definer
set search_path = ''
as $$
  update public.runner_tasks t
  set finished_at = coalesce(t.finished_at, now()),
      exit_reason = left(record_task_finished.exit_reason, 500),
      exit_code = record_task_finished.exit_code
  where t.lease_id = record_task_finished.lease_id;
$$;

revoke all on function queue.record_task_started(text, text, text, text, numeric, numeric, timestamptz) from public;
revoke all on function queue.record_task_heartbeat(text, text, text, text, numeric, numeric, timestamptz) from public;
revoke all on function queue.record_task_finished(text, text, integer) from public;
grant execute on function queue.record_task_started(text, text, text, text, numeric, numeric, timestamptz) to service_role;
grant execute on function queue.record_task_heartbeat(text, text, text, text, numeric, numeric, timestamptz) to runner, service_role;
grant execute on function queue.record_task_finished(text, text, integer) to runner, service_role;

-- Tasks running now: not finished, and their ledger lease not expired (a
-- task that died without a word drops out when its lease would have).
-- Booting: started by dispatch, runner not reported yet (Fargate cold start).
create or replace view public.running_tasks
with (security_invoker = true)
as
select t.kind,
       t.environment,
       case when t.runner_started_at is null then 'booting' else 'running' end as state,
       t.vcpu,
       t.ram_gb,
       t.task_arn,
       t.lease_id,
       t.worker_id,
       t.dispatched_at,
       t.runner_started_at,
       t.last_heartbeat_at,
       t.lease_expires_at,
       now() - t.dispatched_at as running_for
from public.runner_tasks t
where t.finished_at is null
  and coalesce(t.lease_expires_at, t.dispatched_at + interval '5 minutes') > now()
order by t.kind, t.dispatched_at;

comment on view public.running_tasks is
  'Runner tasks running now (or booting), with the vCPU and RAM each holds in the capacity ledger.';

create or replace view public.running_tasks_by_kind
with (security_invoker = true)
as
select r.environment,
       r.kind,
       count(*) as tasks,
       count(*) filter (where r.state = 'booting') as booting,
       sum(r.vcpu) as vcpu,
       sum(r.ram_gb) as ram_gb
from public.running_tasks r
group by r.environment, r.kind
order by r.environment, r.kind;

comment on view public.running_tasks_by_kind is
  'Per environment and kind: tasks running now (of which booting) and the vCPU and RAM they hold.';

-- Tasks of the last 24 hours that ended, or vanished (lease expired with no
-- exit recorded: killed, out of memory, never booted), newest first.
create or replace view public.runner_task_exits
with (security_invoker = true)
as
select t.kind,
       t.environment,
       t.task_arn,
       t.lease_id,
       t.dispatched_at,
       coalesce(t.finished_at, t.lease_expires_at) as ended_at,
       coalesce(t.exit_reason, 'no exit recorded: the task vanished (killed, out of memory, or never booted)') as exit_reason,
       t.exit_code
from public.runner_tasks t
where (t.finished_at is not null or coalesce(t.lease_expires_at, t.dispatched_at + interval '5 minutes') <= now())
  and t.dispatched_at > now() - interval '24 hours'
order by ended_at desc;

comment on view public.runner_task_exits is
  'Runner tasks of the last 24 hours that ended, with why (exit reason and code), or that vanished without reporting.';

revoke all on table public.running_tasks from public, anon, authenticated;
revoke all on table public.running_tasks_by_kind from public, anon, authenticated;
revoke all on table public.runner_task_exits from public, anon, authenticated;
grant select on table public.running_tasks to service_role;
grant select on table public.running_tasks_by_kind to service_role;
grant select on table public.runner_task_exits to service_role;
