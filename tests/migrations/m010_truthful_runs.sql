-- index idx_page_failures_run_id_url
CREATE INDEX "idx_page_failures_run_id_url"
    ON "page_failures" ("run_id", "url");
-- index idx_site_attempts_run_id_domain
CREATE INDEX "idx_site_attempts_run_id_domain"
    ON "site_attempts" ("run_id", "domain");
-- table leads
CREATE TABLE "leads" (
   "run_id" INTEGER REFERENCES "runs"("id"),
   "name" TEXT,
   "domain" TEXT,
   "method" TEXT,
   "source" TEXT,
   "rcode" TEXT,
   "confirmed" INTEGER,
   PRIMARY KEY ("run_id", "name", "method")
);
-- table page_failures
CREATE TABLE "page_failures" (
   "id" INTEGER PRIMARY KEY,
   "run_id" INTEGER REFERENCES "runs"("id"),
   "domain" TEXT,
   "url" TEXT,
   "error" TEXT,
   "failed_at" TEXT
);
-- table run_stages
CREATE TABLE "run_stages" (
   "run_id" INTEGER REFERENCES "runs"("id"),
   "stage" TEXT,
   "status" TEXT,
   "message" TEXT,
   "finished_at" TEXT,
   PRIMARY KEY ("run_id", "stage")
);
-- table site_attempts
CREATE TABLE "site_attempts" (
   "id" INTEGER PRIMARY KEY,
   "run_id" INTEGER REFERENCES "runs"("id"),
   "domain" TEXT,
   "url" TEXT,
   "final_url" TEXT,
   "http_status" INTEGER,
   "address" TEXT,
   "title" TEXT,
   "lang" TEXT,
   "server" TEXT,
   "tls" TEXT,
   "error" TEXT
);
-- view run_counts
CREATE VIEW "run_counts" AS 
SELECT
    r.id AS run_id,
    r.zone AS zone,
    (SELECT count(DISTINCT domain) FROM sightings
        WHERE run_id = r.id AND domain IS NOT NULL) AS domains,
    (SELECT count(*) FROM domains WHERE first_seen_run = r.id) AS new_domains,
    (SELECT count(DISTINCT domain) FROM leads
        WHERE run_id = r.id AND domain IS NOT NULL AND NOT confirmed) AS unconfirmed_leads,
    (SELECT count(DISTINCT domain) FROM sites WHERE run_id = r.id) AS sites,
    (SELECT count(DISTINCT domain) FROM sites WHERE run_id = r.id AND alive) AS live_sites,
    (SELECT count(*) FROM pages WHERE run_id = r.id) AS pages,
    (SELECT count(DISTINCT domain) FROM classifications WHERE run_id = r.id) AS classified,
    (SELECT count(DISTINCT domain) FROM classifications
        WHERE run_id = r.id AND label != 'unknown') AS tagged,
    (SELECT count(*) FROM changes WHERE to_run = r.id AND from_run =
        (SELECT max(from_run) FROM changes WHERE to_run = r.id)) AS changes
FROM runs AS r;
