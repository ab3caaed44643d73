-- index idx_changes_domain
CREATE INDEX "idx_changes_domain"
    ON "changes" ("domain");
-- index idx_changes_to_run_kind
CREATE INDEX "idx_changes_to_run_kind"
    ON "changes" ("to_run", "kind");
-- index idx_pages_run_id_url
CREATE INDEX "idx_pages_run_id_url"
    ON "pages" ("run_id", "url");
-- index idx_sightings_run_id_domain_method
CREATE INDEX "idx_sightings_run_id_domain_method"
    ON "sightings" ("run_id", "domain", "method");
-- index idx_sites_run_id_url
CREATE INDEX "idx_sites_run_id_url"
    ON "sites" ("run_id", "url");
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
