-- table pages_fts
CREATE VIRTUAL TABLE pages_fts USING fts5(title, text, content='');
-- table pages_fts_pending
CREATE TABLE pages_fts_pending (id INTEGER, title TEXT, text TEXT);
-- trigger pages_fts_forget_changed
CREATE TRIGGER pages_fts_forget_changed BEFORE UPDATE OF id, title, text ON pages BEGIN INSERT INTO pages_fts_pending (id, title, text) VALUES (old.id, old.title, old.text); END;
-- trigger pages_fts_forget_deleted
CREATE TRIGGER pages_fts_forget_deleted AFTER DELETE ON pages BEGIN INSERT INTO pages_fts_pending (id, title, text) VALUES (old.id, old.title, old.text); END;
-- dropped trigger pages_ad
-- dropped trigger pages_ai
-- dropped trigger pages_au
