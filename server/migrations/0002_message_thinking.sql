-- A reasoning model's thoughts before its answer, kept apart from the
-- answer's text (NULL when it gave none).
ALTER TABLE messages ADD COLUMN thinking TEXT;
