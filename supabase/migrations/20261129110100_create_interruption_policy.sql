-- Why: "wait again or give up?" after an interruption that was not the
-- document's fault (a reap, an infrastructure release) is decided in one
-- place, next to the retry policy for failures, and so is the backoff that
-- keeps an infrastructure fault from being re-claimed in a tight loop.

-- The status a running row moves to when its stage is interrupted without
-- spending an attempt: its stage's waiting status (2 → 1, 6 → 3), or 4 when
-- `give_up` (the interruption's own limit is reached). Null for a row that
-- is not running.
create or replace function private.status_after_interruption(job public.extraction_queue, give_up boolean)
returns integer
language sql
immutable
set search_path = ''
as $$
  select case
    when job.status_id not in (2, 6) then null
    when give_up then 4
    when job.status_id = 2 then 1
    else 3
  end
$$;

-- How long a job waits after its `releases`-th infrastructure release in a
-- row: 15 s, 30 s, 60 s, ... capped at 10 minutes. Long enough for a quota
-- window or a restarted service to come back, short enough that ten
-- releases (the default limit) take about an hour before the job gives up.
create or replace function private.infrastructure_backoff(releases integer)
returns interval
language sql
immutable
set search_path = ''
as $$
  select least(
    interval '15 seconds' * power(2, least(greatest(coalesce(releases, 1), 1) - 1, 20)),
    interval '10 minutes'
  )
$$;

revoke all on function private.status_after_interruption(public.extraction_queue, boolean) from public;
revoke all on function private.infrastructure_backoff(integer) from public;
