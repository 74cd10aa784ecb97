-- A delivery is written more than once: inserted open, then updated when an attempt is
-- claimed and when it settles. Pages filled to 80 % by inserts left room for new versions
-- of a fifth of their rows, so a quarter of those updates in the end-to-end benchmark
-- found their page full and wrote a new entry in every index of deliveries. Rows inserted
-- together are updated together, before their old versions can be pruned, so a page needs
-- room for a second version of every row it was filled with: inserts fill half of it
-- (99 % of the updates in place in the same benchmark). Pages already written keep their
-- fill; the setting applies to new ones, without a rewrite.
ALTER TABLE deliveries SET (fillfactor = 50);
