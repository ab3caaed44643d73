-- table links
CREATE TABLE "links" (
   "id" INTEGER PRIMARY KEY,
   "run_id" INTEGER REFERENCES "runs"("id"),
   "page_id" INTEGER REFERENCES "pages"("id"),
   "to_url" TEXT,
   "to_host" TEXT,
   "internal" INTEGER,
   "how" TEXT
, "anchor" TEXT);
-- table pages
CREATE TABLE "pages" (
   "id" INTEGER PRIMARY KEY,
   "run_id" INTEGER REFERENCES "runs"("id"),
   "domain" TEXT REFERENCES "domains"("name"),
   "url" TEXT,
   "http_status" INTEGER,
   "content_type" TEXT,
   "charset" TEXT,
   "sha256" TEXT,
   "title" TEXT,
   "lang" TEXT,
   "lang_confidence" REAL,
   "lang_source" TEXT,
   "text" TEXT,
   "depth" INTEGER,
   "fetched_at" TEXT,
   "warc_file" TEXT,
   "warc_offset" INTEGER,
   "warc_record_id" TEXT,
   "revisit_of" INTEGER REFERENCES "pages"("id")
, "description" TEXT, "headings" TEXT);
