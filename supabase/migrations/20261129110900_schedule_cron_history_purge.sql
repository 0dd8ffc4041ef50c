-- Why: pg_cron writes a row to cron.job_run_details for every run, and two
-- jobs run every minute: about 3,000 rows a day that nothing ever deletes
-- (Supabase's own guidance is to purge them on a schedule). A daily job
-- keeps the last 7 days, enough to answer "did the tick run last night?".
--
-- Like the other cron jobs, only in the database pg_cron runs in; elsewhere
-- (test clones) this migration skips itself with a notice. cron.schedule with
-- a job name updates the job of that name, so applying this again changes
-- nothing.

do $$
begin
  if current_setting('cron.database_name', true) is null
     or current_database() <> current_setting('cron.database_name', true) then
    raise notice 'cron history purge not scheduled in database %: pg_cron runs in database %',
      current_database(), coalesce(current_setting('cron.database_name', true), '(pg_cron is not loaded)');
    return;
  end if;

  create extension if not exists pg_cron;

  -- 03:17 UTC: off the hour, when the queue is quietest.
  perform cron.schedule(
    'purge-cron-run-details',
    '17 3 * * *',
    $job$delete from cron.job_run_details where end_time < now() - interval '7 days'$job$
  );
end
$$;
