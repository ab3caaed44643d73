-- index idx_changes_from_run_to_run
CREATE INDEX "idx_changes_from_run_to_run"
    ON "changes" ("from_run", "to_run");
-- index idx_classifications_run_id_domain
CREATE INDEX "idx_classifications_run_id_domain"
    ON "classifications" ("run_id", "domain");
-- index idx_links_run_id_page_id
CREATE INDEX "idx_links_run_id_page_id"
    ON "links" ("run_id", "page_id");
-- index idx_pages_run_id_domain
CREATE INDEX "idx_pages_run_id_domain"
    ON "pages" ("run_id", "domain");
-- index idx_pages_sha256
CREATE INDEX "idx_pages_sha256"
    ON "pages" ("sha256");
-- index idx_pages_url
CREATE INDEX "idx_pages_url"
    ON "pages" ("url");
-- index idx_sites_run_id_domain
CREATE INDEX "idx_sites_run_id_domain"
    ON "sites" ("run_id", "domain");
-- table changes
CREATE TABLE "changes" (
   "id" INTEGER PRIMARY KEY,
   "from_run" INTEGER REFERENCES "runs"("id"),
   "to_run" INTEGER REFERENCES "runs"("id"),
   "kind" TEXT,
   "subject" TEXT,
   "before" TEXT,
   "after" TEXT,
   "detail" TEXT
);
-- table classifications
CREATE TABLE "classifications" (
   "id" INTEGER PRIMARY KEY,
   "run_id" INTEGER REFERENCES "runs"("id"),
   "domain" TEXT REFERENCES "domains"("name"),
   "label" TEXT,
   "confidence" REAL,
   "evidence" TEXT,
   "source" TEXT,
   "secondary" TEXT
);
-- table labels
CREATE TABLE "labels" (
   "domain" TEXT PRIMARY KEY,
   "label" TEXT,
   "note" TEXT,
   "set_at" TEXT
);
-- table links
CREATE TABLE "links" (
   "id" INTEGER PRIMARY KEY,
   "run_id" INTEGER REFERENCES "runs"("id"),
   "page_id" INTEGER REFERENCES "pages"("id"),
   "to_url" TEXT,
   "to_host" TEXT,
   "internal" INTEGER,
   "how" TEXT
);
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
);
-- table pages_fts
CREATE VIRTUAL TABLE "pages_fts" USING FTS5 (
    "title", "text",
    content="pages"
);
-- table pages_fts_config
CREATE TABLE 'pages_fts_config'(k PRIMARY KEY, v) WITHOUT ROWID;
-- table pages_fts_data
CREATE TABLE 'pages_fts_data'(id INTEGER PRIMARY KEY, block BLOB);
-- table pages_fts_docsize
CREATE TABLE 'pages_fts_docsize'(id INTEGER PRIMARY KEY, sz BLOB);
-- table pages_fts_idx
CREATE TABLE 'pages_fts_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID;
-- table sites
CREATE TABLE "sites" (
   "id" INTEGER PRIMARY KEY,
   "run_id" INTEGER REFERENCES "runs"("id"),
   "domain" TEXT REFERENCES "domains"("name"),
   "url" TEXT,
   "final_url" TEXT,
   "http_status" INTEGER,
   "address" TEXT,
   "alive" INTEGER,
   "title" TEXT,
   "lang" TEXT,
   "pages" INTEGER,
   "error" TEXT,
   "server" TEXT,
   "tls_issuer" TEXT,
   "tls_subject" TEXT,
   "tls_names" TEXT,
   "tls_not_before" TEXT,
   "tls_not_after" TEXT,
   "screenshot" TEXT
);
-- trigger pages_ad
CREATE TRIGGER "pages_ad" AFTER DELETE ON "pages" BEGIN
  INSERT INTO "pages_fts" ("pages_fts", rowid, "title", "text") VALUES('delete', old.rowid, old."title", old."text");
END;
-- trigger pages_ai
CREATE TRIGGER "pages_ai" AFTER INSERT ON "pages" BEGIN
  INSERT INTO "pages_fts" (rowid, "title", "text") VALUES (new.rowid, new."title", new."text");
END;
-- trigger pages_au
CREATE TRIGGER "pages_au" AFTER UPDATE ON "pages" BEGIN
  INSERT INTO "pages_fts" ("pages_fts", rowid, "title", "text") VALUES('delete', old.rowid, old."title", old."text");
  INSERT INTO "pages_fts" (rowid, "title", "text") VALUES (new.rowid, new."title", new."text");
END;
