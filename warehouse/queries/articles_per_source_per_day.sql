-- Articles per source per day (publication date in UTC, the partition column), with how many had
-- extractable text and how many were copies of a story first published elsewhere.
-- Add `WHERE published_date >= current_date - 30` for the last month only (the partition column prunes files).
SELECT published_date                                   AS day,
       source,
       count(*)                                         AS articles,
       count(*) FILTER (WHERE extraction_status = 'ok') AS with_text,
       count(*) FILTER (WHERE duplicate_of IS NOT NULL) AS copies
FROM articles
GROUP BY ALL
ORDER BY day, source;
