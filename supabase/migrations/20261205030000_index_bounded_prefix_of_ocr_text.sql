-- Why: the French full-text indexes covered the whole OCR text, and a
-- tsvector must stay under 1 MB ("string is too long for tsvector",
-- SQLSTATE 54000: lexeme offsets are 20-bit fields, see
-- https://www.postgresql.org/docs/15/textsearch-limitations.html and
-- src/include/tsearch/ts_type.h). A long acte's text made complete_ocr fail
-- on the index, whatever the runner did, and the report retried forever.
-- The indexes now cover the first 100,000 characters: at most 400 KB of
-- lexemes (4 bytes a character in UTF-8) plus their positions, well under
-- the limit, and the whole of any ordinary document. The text itself is
-- stored whole. A search that wants the index uses the same expression:
--   to_tsvector('french', left(file_content, 100000)) @@ websearch_to_tsquery('french', '…')

drop index if exists public.extraction_queue_file_content_fts_idx;
drop index if exists public.extraction_queue_boosted_file_content_fts_idx;

create index if not exists extraction_queue_file_content_prefix_fts_idx
  on public.extraction_queue using gin (to_tsvector('french'::regconfig, left(file_content, 100000)));
create index if not exists extraction_queue_boosted_file_content_prefix_fts_idx
  on public.extraction_queue using gin (to_tsvector('french'::regconfig, left(boosted_file_content, 100000)));

comment on index public.extraction_queue_file_content_prefix_fts_idx is
  'French full-text search on the first 100,000 characters of file_content (a whole-text tsvector can pass 1 MB). Query with to_tsvector(''french'', left(file_content, 100000)).';
comment on index public.extraction_queue_boosted_file_content_prefix_fts_idx is
  'French full-text search on the first 100,000 characters of boosted_file_content. Query with to_tsvector(''french'', left(boosted_file_content, 100000)).';
