-- index idx_axfr_attempts_outcome
CREATE INDEX "idx_axfr_attempts_outcome"
    ON "axfr_attempts" ("outcome");
-- index idx_sites_run_id_alive
CREATE INDEX "idx_sites_run_id_alive"
    ON "sites" ("run_id", "alive");
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
WHERE r.id = (SELECT max(id) FROM runs WHERE status = 'complete' AND zone = r.zone);
