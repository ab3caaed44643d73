-- table nsec3_hashes
CREATE TABLE "nsec3_hashes" (
   "run_id" INTEGER REFERENCES "runs"("id"),
   "zone" TEXT,
   "hash" TEXT,
   "next_hash" TEXT,
   "types" TEXT, "opt_out" INTEGER, "name" TEXT, "named_by" TEXT,
   PRIMARY KEY ("run_id", "zone", "hash")
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
   "wildcard_answers" TEXT, "chain_closed" INTEGER, "chain_length" INTEGER, "chain_queries" INTEGER, "chain_unknown" INTEGER,
   PRIMARY KEY ("run_id", "zone")
);
