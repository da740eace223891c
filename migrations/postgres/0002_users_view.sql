-- users_view: teachers and students in one relation, for the guide's Prisma `view User`.
-- Teacher ids and student ids overlap, so a user is identified by (role, id), never by
-- id alone. Requires the app's "Teacher" and "Student" tables (id, name).
CREATE OR REPLACE VIEW users_view AS
    SELECT "id", "name", 'teacher'::text AS "role" FROM "Teacher"
    UNION ALL
    SELECT "id", "name", 'student'::text AS "role" FROM "Student";
