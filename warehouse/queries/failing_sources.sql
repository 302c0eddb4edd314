-- Feeds that are failing now (consecutive failures since their last success), with the last error;
-- `source_health` has one row per feed seen in the fetch log.
SELECT source, consecutive_failures, last_outcome, last_error, last_success, last_attempt, articles_per_day
FROM source_health
WHERE consecutive_failures > 0
ORDER BY consecutive_failures DESC, source;
