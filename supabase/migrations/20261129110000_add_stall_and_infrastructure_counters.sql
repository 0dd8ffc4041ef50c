-- Why: an attempt is for the document. Two things used to spend one that
-- were never the document's fault: a runner that died holding the job (its
-- lease expired and the reaper took it back), and a runner that could not
-- work at all (Gemini quota, Storage or the registry unreachable, the
-- browser would not start). Each now has its own counter and its own limit,
-- so neither burns attempts and neither can cycle a job forever:
--   stalls / ocr_stalls        reaps of the extraction / OCR stage (BullMQ's
--                              "stalled" jobs); past max_stalls the job ends in 4;
--   infrastructure_releases    infrastructure releases in a row, whatever the
--                              stage; reset when an attempt runs its course
--                              (completed or failed); at
--                              max_infrastructure_releases the job ends in 4.
-- The limits are columns, like max_attempts: change a column default to
-- change it for new jobs, or one row's value for that job.

alter table public.extraction_queue
  add column if not exists stalls integer not null default 0,
  add column if not exists ocr_stalls integer not null default 0,
  add column if not exists max_stalls integer not null default 2,
  add column if not exists infrastructure_releases integer not null default 0,
  add column if not exists max_infrastructure_releases integer not null default 10;

alter table public.extraction_queue
  drop constraint if exists extraction_queue_interruption_counters_check,
  add constraint extraction_queue_interruption_counters_check
    check (stalls >= 0 and ocr_stalls >= 0 and max_stalls >= 0
           and infrastructure_releases >= 0 and max_infrastructure_releases >= 1);

comment on column public.extraction_queue.stalls is
  'Times the extraction stage''s lease expired with the runner gone (reaped). Spends no attempt; past max_stalls the job ends in 4.';
comment on column public.extraction_queue.ocr_stalls is
  'Times the OCR stage''s lease expired with the runner gone (reaped). Spends no attempt; past max_stalls the job ends in 4.';
comment on column public.extraction_queue.max_stalls is
  'Reaps a stage may survive (BullMQ''s maxStalledCount); the next one ends the job in 4.';
comment on column public.extraction_queue.infrastructure_releases is
  'Releases in a row because the runner could not work (quota, Storage, registry or network unreachable, browser launch): no attempt spent, available_at backs off. Reset when an attempt completes or fails.';
comment on column public.extraction_queue.max_infrastructure_releases is
  'Infrastructure releases in a row after which the job ends in 4 instead of waiting again.';
