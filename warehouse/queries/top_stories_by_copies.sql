-- Top stories by number of copies: the stories most outlets carried, with the first title seen,
-- the outlets, and how long the story kept spreading.
SELECT copies,
       sources                                 AS outlets,
       title,
       first_published_at,
       last_seen_at - first_seen_at            AS spread_over,
       list_aggr(outlets, 'string_agg', ', ')  AS outlet_names,
       cluster_id
FROM clusters
WHERE copies > 1
ORDER BY copies DESC, sources DESC, first_published_at, cluster_id
LIMIT 20;
