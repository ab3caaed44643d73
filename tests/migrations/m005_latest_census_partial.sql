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
