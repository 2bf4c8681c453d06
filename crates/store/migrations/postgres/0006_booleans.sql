-- PostgreSQL only: flags become real booleans (they were BIGINT 0/1 while both databases ran the
-- same migrations). SQLite keeps its integers, which its driver reads as booleans.
ALTER TABLE users ALTER COLUMN verified DROP DEFAULT,
    ALTER COLUMN verified TYPE BOOLEAN USING verified <> 0,
    ALTER COLUMN verified SET DEFAULT false;
ALTER TABLE server_apps ALTER COLUMN public DROP DEFAULT,
    ALTER COLUMN public TYPE BOOLEAN USING public <> 0,
    ALTER COLUMN public SET DEFAULT false;
ALTER TABLE server_apps ALTER COLUMN trust_by_default DROP DEFAULT,
    ALTER COLUMN trust_by_default TYPE BOOLEAN USING trust_by_default <> 0,
    ALTER COLUMN trust_by_default SET DEFAULT false;
ALTER TABLE streams ALTER COLUMN allow_public_comments DROP DEFAULT,
    ALTER COLUMN allow_public_comments TYPE BOOLEAN USING allow_public_comments <> 0,
    ALTER COLUMN allow_public_comments SET DEFAULT false;
ALTER TABLE refresh_tokens ALTER COLUMN client_authenticated DROP DEFAULT,
    ALTER COLUMN client_authenticated TYPE BOOLEAN USING client_authenticated <> 0,
    ALTER COLUMN client_authenticated SET DEFAULT true;
