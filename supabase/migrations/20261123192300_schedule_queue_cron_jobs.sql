-- Why: hints from triggers can be lost (pg_net drops requests, NOTIFY has no
-- listener while the bridge restarts), and a runner that dies leaves a lease
-- behind. Two named pg_cron jobs make both self-healing: `dispatch-tick`
-- calls dispatch every minute, `reap-expired-leases` returns expired leases
-- to waiting every minute.
--
-- pg_cron can only be created in the database named by `cron.database_name`
-- (`postgres` on Supabase and on the local cluster). Any other database
-- (test clones, a second local database) skips this migration with a notice.
-- cron.schedule with a job name updates the job of that name, so applying
-- this again changes nothing.

do $$
begin
  if current_setting('cron.database_name', true) is null
     or current_database() <> current_setting('cron.database_name', true) then
    raise notice 'queue cron jobs not scheduled in database %: pg_cron runs in database %',
      current_database(), coalesce(current_setting('cron.database_name', true), '(pg_cron is not loaded)');
    return;
  end if;

  create extension if not exists pg_cron;

  perform cron.schedule('dispatch-tick', '* * * * *', 'select private.dispatch_tick()');
  perform cron.schedule('reap-expired-leases', '* * * * *', 'select queue.reap_expired_leases()');
end
$$;
