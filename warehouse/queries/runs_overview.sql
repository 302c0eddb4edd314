-- Recent runs in commit order: what each brought, and how fresh the warehouse is.
SELECT seq,
       run_id,
       kind,
       committed_at,
       counts['articles_written'] AS articles,
       counts['duplicates']       AS duplicates,
       counts['feeds_failed']     AS feeds_failed,
       committed_at - started_at  AS took
FROM runs
ORDER BY seq DESC
LIMIT 20;
