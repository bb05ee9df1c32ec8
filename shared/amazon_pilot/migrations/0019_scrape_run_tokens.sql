-- A token-priced product source (Keepa, adapters/keepa.py) is billed by token capacity,
-- not per result: each run keeps the tokens its requests consumed, as Keepa's answers
-- reported them (NULL for sources that do not count tokens, such as Apify).
ALTER TABLE scrape_runs ADD COLUMN tokens_consumed integer;
