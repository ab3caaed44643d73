-- index idx_axfr_attempts_outcome
CREATE INDEX "idx_axfr_attempts_outcome"
    ON "axfr_attempts" ("outcome");
-- index idx_axfr_attempts_run_id_zone
CREATE INDEX "idx_axfr_attempts_run_id_zone"
    ON "axfr_attempts" ("run_id", "zone");
-- index idx_changes_domain
CREATE INDEX "idx_changes_domain"
    ON "changes" ("domain");
-- index idx_changes_from_run_to_run
CREATE INDEX "idx_changes_from_run_to_run"
    ON "changes" ("from_run", "to_run");
-- index idx_changes_to_run_kind
CREATE INDEX "idx_changes_to_run_kind"
    ON "changes" ("to_run", "kind");
-- index idx_classifications_run_id_domain
CREATE INDEX "idx_classifications_run_id_domain"
    ON "classifications" ("run_id", "domain");
-- index idx_dns_records_run_id_name_type
CREATE INDEX "idx_dns_records_run_id_name_type"
    ON "dns_records" ("run_id", "name", "type");
-- index idx_domains_last_seen_run
CREATE INDEX "idx_domains_last_seen_run"
    ON "domains" ("last_seen_run");
-- index idx_domains_suffix
CREATE INDEX "idx_domains_suffix"
    ON "domains" ("suffix");
-- index idx_links_run_id_page_id
CREATE INDEX "idx_links_run_id_page_id"
    ON "links" ("run_id", "page_id");
-- index idx_nameservers_run_id_zone
CREATE INDEX "idx_nameservers_run_id_zone"
    ON "nameservers" ("run_id", "zone");
-- index idx_pages_run_id_domain
CREATE INDEX "idx_pages_run_id_domain"
    ON "pages" ("run_id", "domain");
-- index idx_pages_run_id_url
CREATE INDEX "idx_pages_run_id_url"
    ON "pages" ("run_id", "url");
-- index idx_pages_sha256
CREATE INDEX "idx_pages_sha256"
    ON "pages" ("sha256");
-- index idx_pages_url
CREATE INDEX "idx_pages_url"
    ON "pages" ("url");
-- index idx_sightings_name
CREATE INDEX "idx_sightings_name"
    ON "sightings" ("name");
-- index idx_sightings_run_id_domain_method
CREATE INDEX "idx_sightings_run_id_domain_method"
    ON "sightings" ("run_id", "domain", "method");
-- index idx_sightings_run_id_name_method_source
CREATE UNIQUE INDEX "idx_sightings_run_id_name_method_source"
    ON "sightings" ("run_id", "name", "method", "source");
-- index idx_sites_run_id_alive
CREATE INDEX "idx_sites_run_id_alive"
    ON "sites" ("run_id", "alive");
-- index idx_sites_run_id_domain
CREATE INDEX "idx_sites_run_id_domain"
    ON "sites" ("run_id", "domain");
-- index idx_sites_run_id_url
CREATE INDEX "idx_sites_run_id_url"
    ON "sites" ("run_id", "url");
-- table axfr_attempts
CREATE TABLE "axfr_attempts" (
   "id" INTEGER PRIMARY KEY,
   "run_id" INTEGER REFERENCES "runs"("id"),
   "zone" TEXT,
   "ns_name" TEXT,
   "address" TEXT,
   "outcome" TEXT,
   "records" INTEGER,
   "soa_serial" INTEGER,
   "error" TEXT,
   "seconds" REAL,
   "attempted_at" TEXT
);
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
, "domain" TEXT);
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
-- table dns_records
CREATE TABLE "dns_records" (
   "id" INTEGER PRIMARY KEY,
   "run_id" INTEGER REFERENCES "runs"("id"),
   "name" TEXT,
   "type" TEXT,
   "ttl" INTEGER,
   "value" TEXT,
   "source" TEXT
);
-- table domains
CREATE TABLE "domains" (
   "name" TEXT PRIMARY KEY,
   "suffix" TEXT,
   "first_seen_run" INTEGER REFERENCES "runs"("id"),
   "last_seen_run" INTEGER REFERENCES "runs"("id")
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
, "anchor" TEXT);
-- table nameservers
CREATE TABLE "nameservers" (
   "id" INTEGER PRIMARY KEY,
   "run_id" INTEGER REFERENCES "runs"("id"),
   "zone" TEXT,
   "ns_name" TEXT,
   "address" TEXT,
   "source" TEXT
);
-- table nsec3_hashes
CREATE TABLE "nsec3_hashes" (
   "run_id" INTEGER REFERENCES "runs"("id"),
   "zone" TEXT,
   "hash" TEXT,
   "next_hash" TEXT,
   "types" TEXT,
   PRIMARY KEY ("run_id", "zone", "hash")
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
, "description" TEXT, "headings" TEXT);
-- table pages_fts
CREATE VIRTUAL TABLE pages_fts USING fts5(title, text, content='');
-- table pages_fts_config
CREATE TABLE 'pages_fts_config'(k PRIMARY KEY, v) WITHOUT ROWID;
-- table pages_fts_data
CREATE TABLE 'pages_fts_data'(id INTEGER PRIMARY KEY, block BLOB);
-- table pages_fts_docsize
CREATE TABLE 'pages_fts_docsize'(id INTEGER PRIMARY KEY, sz BLOB);
-- table pages_fts_idx
CREATE TABLE 'pages_fts_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID;
-- table pages_fts_pending
CREATE TABLE pages_fts_pending (id INTEGER, title TEXT, text TEXT);
-- table runs
CREATE TABLE "runs" (
   "id" INTEGER PRIMARY KEY,
   "zone" TEXT,
   "started_at" TEXT,
   "finished_at" TEXT,
   "status" TEXT,
   "stage" TEXT,
   "message" TEXT,
   "tool_version" TEXT,
   "options" TEXT
);
-- table sightings
CREATE TABLE "sightings" (
   "id" INTEGER PRIMARY KEY,
   "run_id" INTEGER REFERENCES "runs"("id"),
   "name" TEXT,
   "domain" TEXT,
   "method" TEXT,
   "source" TEXT
);
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
-- table zones
CREATE TABLE "zones" (
   "run_id" INTEGER REFERENCES "runs"("id"),
   "zone" TEXT,
   "parent" TEXT,
   "soa_serial" INTEGER,
   "soa_mname" TEXT,
   "soa_rname" TEXT,
   "signed" INTEGER,
   "nsec" TEXT,
   "nsec3_params" TEXT,
   "wildcard" INTEGER,
   "wildcard_answers" TEXT,
   PRIMARY KEY ("run_id", "zone")
);
-- trigger pages_fts_forget_changed
CREATE TRIGGER pages_fts_forget_changed BEFORE UPDATE OF id, title, text ON pages BEGIN INSERT INTO pages_fts_pending (id, title, text) VALUES (old.id, old.title, old.text); END;
-- trigger pages_fts_forget_deleted
CREATE TRIGGER pages_fts_forget_deleted AFTER DELETE ON pages BEGIN INSERT INTO pages_fts_pending (id, title, text) VALUES (old.id, old.title, old.text); END;
-- view axfr_history
CREATE VIEW "axfr_history" AS 
SELECT
    a.run_id AS run_id,
    r.started_at AS started_at,
    a.zone AS zone,
    a.ns_name AS ns_name,
    a.address AS address,
    a.outcome AS outcome,
    lag(a.outcome) OVER (PARTITION BY a.zone, a.ns_name, a.address ORDER BY a.run_id, a.id)
        AS previous_outcome,
    a.records AS records,
    a.soa_serial AS soa_serial,
    a.error AS error
FROM axfr_attempts AS a
JOIN runs AS r ON r.id = a.run_id;
-- view change_history
CREATE VIEW "change_history" AS 
SELECT
    c.id AS id,
    a.zone AS zone,
    c.from_run AS from_run,
    a.started_at AS from_started_at,
    c.to_run AS to_run,
    b.started_at AS to_started_at,
    c.kind AS kind,
    c.domain AS domain,
    c.subject AS subject,
    c.before AS before,
    c.after AS after,
    c.detail AS detail
FROM changes AS c
JOIN runs AS a ON a.id = c.from_run
JOIN runs AS b ON b.id = c.to_run;
-- view domain_history
CREATE VIEW "domain_history" AS 
SELECT
    s.run_id AS run_id,
    r.started_at AS started_at,
    r.status AS run_status,
    s.domain AS domain,
    (SELECT max(alive) FROM sites WHERE run_id = s.run_id AND domain = s.domain) AS alive,
    (SELECT http_status FROM sites WHERE run_id = s.run_id AND domain = s.domain
        ORDER BY alive DESC, id LIMIT 1) AS http_status,
    (SELECT title FROM sites WHERE run_id = s.run_id AND domain = s.domain
        ORDER BY alive DESC, id LIMIT 1) AS title,
    (SELECT label FROM classifications WHERE run_id = s.run_id AND domain = s.domain
        ORDER BY source = 'label' DESC, id DESC LIMIT 1) AS label,
    (SELECT group_concat(value, ' ') FROM (SELECT value FROM dns_records
        WHERE run_id = s.run_id AND name = s.domain AND type IN ('A', 'AAAA')
        ORDER BY value)) AS address,
    (SELECT soa_serial FROM zones WHERE run_id = s.run_id AND zone IN (d.suffix, r.zone)
        ORDER BY length(zone) DESC LIMIT 1) AS soa_serial,
    (SELECT count(*) FROM pages WHERE run_id = s.run_id AND domain = s.domain) AS pages
FROM (SELECT DISTINCT run_id, domain FROM sightings WHERE domain IS NOT NULL) AS s
JOIN runs AS r ON r.id = s.run_id
LEFT JOIN domains AS d ON d.name = s.domain;
-- view latest_census
CREATE VIEW "latest_census" AS 
SELECT
    r.id AS run_id,
    r.zone AS zone,
    d.name AS domain,
    d.suffix AS suffix,
    (SELECT label FROM classifications WHERE run_id = r.id AND domain = d.name
        ORDER BY source = 'label' DESC, id DESC LIMIT 1) AS purpose,
    (SELECT confidence FROM classifications WHERE run_id = r.id AND domain = d.name
        ORDER BY source = 'label' DESC, id DESC LIMIT 1) AS confidence,
    coalesce((SELECT max(alive) FROM sites WHERE run_id = r.id AND domain = d.name), 0)
        AS alive,
    (SELECT http_status FROM sites WHERE run_id = r.id AND domain = d.name
        ORDER BY alive DESC, id LIMIT 1) AS http_status,
    (SELECT title FROM sites WHERE run_id = r.id AND domain = d.name
        ORDER BY alive DESC, id LIMIT 1) AS title,
    (SELECT lang FROM sites WHERE run_id = r.id AND domain = d.name
        ORDER BY alive DESC, id LIMIT 1) AS lang,
    (SELECT coalesce(final_url, url) FROM sites WHERE run_id = r.id AND domain = d.name
        ORDER BY alive DESC, id LIMIT 1) AS url,
    (SELECT group_concat(value, ' ') FROM (SELECT DISTINCT value FROM dns_records
        WHERE run_id = r.id AND name = d.name AND type IN ('A', 'AAAA')
        ORDER BY value)) AS address,
    (SELECT count(*) FROM pages WHERE run_id = r.id AND domain = d.name) AS pages,
    (SELECT screenshot FROM sites WHERE run_id = r.id AND domain = d.name
        AND screenshot IS NOT NULL ORDER BY alive DESC, id LIMIT 1) AS screenshot,
    d.first_seen_run AS first_seen_run,
    (SELECT started_at FROM runs WHERE id = d.first_seen_run) AS first_seen,
    d.last_seen_run AS last_seen_run,
    (SELECT started_at FROM runs WHERE id = d.last_seen_run) AS last_seen,
    (SELECT group_concat(method, ' ') FROM (SELECT DISTINCT method FROM sightings
        WHERE run_id = r.id AND domain = d.name ORDER BY method)) AS found_by
FROM runs AS r
JOIN (SELECT DISTINCT run_id, domain FROM sightings WHERE domain IS NOT NULL) AS s
    ON s.run_id = r.id
JOIN domains AS d ON d.name = s.domain
WHERE r.id = (SELECT max(id) FROM runs WHERE status IN ('complete', 'partial') AND zone = r.zone);
