-- index idx_axfr_attempts_run_id_zone
CREATE INDEX "idx_axfr_attempts_run_id_zone"
    ON "axfr_attempts" ("run_id", "zone");
-- index idx_dns_records_run_id_name_type
CREATE INDEX "idx_dns_records_run_id_name_type"
    ON "dns_records" ("run_id", "name", "type");
-- index idx_domains_last_seen_run
CREATE INDEX "idx_domains_last_seen_run"
    ON "domains" ("last_seen_run");
-- index idx_domains_suffix
CREATE INDEX "idx_domains_suffix"
    ON "domains" ("suffix");
-- index idx_nameservers_run_id_zone
CREATE INDEX "idx_nameservers_run_id_zone"
    ON "nameservers" ("run_id", "zone");
-- index idx_sightings_name
CREATE INDEX "idx_sightings_name"
    ON "sightings" ("name");
-- index idx_sightings_run_id_name_method_source
CREATE UNIQUE INDEX "idx_sightings_run_id_name_method_source"
    ON "sightings" ("run_id", "name", "method", "source");
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
