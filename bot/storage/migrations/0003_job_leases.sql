-- Job leases: a process works on a job only while it holds the job's lease (its name in lease_owner, the
-- lease's end as epoch seconds in lease_until); once the lease has run out, another process may take the job.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until REAL;
CREATE INDEX jobs_lease_until ON jobs (lease_until) WHERE lease_owner IS NOT NULL;
