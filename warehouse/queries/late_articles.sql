-- Articles first seen more than six hours after their publication time: they landed in the partition
-- of their publication date (not of the day they were loaded), so queries by date stay right.
SELECT published_date,
       source,
       title,
       published_at,
       first_seen_at,
       first_seen_at - published_at AS found_after
FROM articles
WHERE published_at IS NOT NULL AND first_seen_at - published_at > INTERVAL 6 HOUR
ORDER BY found_after DESC
LIMIT 50;
