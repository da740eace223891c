# Shared by the A/B scripts (sourced): a fresh database with the app's 1,000 teachers and
# 1,000 students, set up by the given chat-server build.
#   ab_database NAME CHAT_SERVER_BIN   (needs ADMIN, the admin URL)
ab_database() {
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
  psql "${ADMIN%/*}/$1" -q >/dev/null <<'SQL'
CREATE TABLE "Teacher" (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE "Student" (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO "Teacher" (name) SELECT 'T-' || n FROM generate_series(1, 1000) n;
INSERT INTO "Student" (name) SELECT 'S-' || n FROM generate_series(1, 1000) n;
SQL
  DATABASE_URL="${ADMIN%/*}/$1" "$2" setup >/dev/null
}
