-- The project a memory came from (`hivemind_app/projects.py`: a git remote as host/owner/repo, or a
-- repository's root); NULL for a memory stored outside any project, and for every memory stored before
-- projects existed: those are recalled in every project, like memories tagged `global`.

ALTER TABLE memories ADD COLUMN project TEXT;
CREATE INDEX memories_project ON memories(project) WHERE deleted = 0;
