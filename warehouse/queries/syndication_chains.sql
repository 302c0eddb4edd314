-- Syndication chains: for every story published by more than one outlet, the origin (the copy
-- `articles_unique` chooses: the outlet the copies credit, else the earliest) and each later copy in
-- order of publication, with its delay, the credit line it carried and how it was matched.
WITH origin AS (
    SELECT cluster_id, article_id AS origin_id, source AS origin_source, title AS origin_title,
           published_at AS origin_published_at
    FROM articles_unique
)
SELECT o.origin_title,
       o.origin_source,
       o.origin_published_at,
       row_number() OVER (PARTITION BY a.cluster_id ORDER BY a.published_at NULLS LAST, a.first_seen_at, a.article_id)
                                                  AS hop,
       a.source                                   AS copy_source,
       a.published_at                             AS copy_published_at,
       a.published_at - o.origin_published_at     AS delay,
       a.syndicated_from                          AS credited_to,
       a.dup_method,
       round(a.similarity, 3)                     AS similarity,
       a.cluster_id
FROM articles a
JOIN origin o USING (cluster_id)
WHERE a.article_id <> o.origin_id
ORDER BY o.origin_published_at DESC, a.cluster_id, hop;
