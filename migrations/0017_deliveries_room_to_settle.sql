-- A delivery is written twice: inserted open, then updated once settled. Pages filled to
-- 80 % by inserts left room for the settled versions of a fifth of their rows, so most
-- settling updates (62 % in the end-to-end benchmark) found their page full and wrote a
-- new entry in every index of deliveries. Rows inserted together are settled together,
-- before their old versions can be pruned, so a page needs room for a second version of
-- every row it was filled with: inserts fill half of it. Pages already written keep their
-- fill; the setting applies to new ones, without a rewrite.
ALTER TABLE deliveries SET (fillfactor = 50);
