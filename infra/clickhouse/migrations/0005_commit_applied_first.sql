-- Commit manifests v2 (DECISIONS #64): the as-of inputs a live run applied at the start of the transaction, before
-- the merged ones. Empty for merged commits and for v1 manifests. Re-runnable: ADD COLUMN IF NOT EXISTS.

ALTER TABLE tape.commits
    ADD COLUMN IF NOT EXISTS `applied_first` Array(LowCardinality(String)) DEFAULT [] COMMENT 'as-of input topics applied before the others (a live run; empty: every input merged)' AFTER `committed_ts`;
