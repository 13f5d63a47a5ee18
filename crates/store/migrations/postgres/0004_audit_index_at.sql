-- Every audit append paid for an index on `at` that only the retention prune used, to find
-- the first event at or after the cutoff. Walking the log in index order finds the same event
-- and reads only the events about to be pruned, so the index goes.
DROP INDEX audit_events_at;
