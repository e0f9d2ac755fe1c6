-- One database per service (DESIGN section 2), each owned by a login role of the same name, so no
-- service can read or write another's data. The postgres image runs this once, on an empty data
-- volume (docker-entrypoint-initdb.d), with psql -v ON_ERROR_STOP=1.
-- The roles' password is LINLI_DB_PASSWORD from the postgres container's environment (psql 15+).

\getenv linli_db_password LINLI_DB_PASSWORD
\if :{?linli_db_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'set LINLI_DB_PASSWORD in the environment of the postgres container'; END $$;
\endif

CREATE ROLE gateway LOGIN PASSWORD :'linli_db_password';
CREATE DATABASE gateway OWNER gateway;
REVOKE ALL ON DATABASE gateway FROM PUBLIC;

CREATE ROLE issues LOGIN PASSWORD :'linli_db_password';
CREATE DATABASE issues OWNER issues;
REVOKE ALL ON DATABASE issues FROM PUBLIC;

CREATE ROLE meetings LOGIN PASSWORD :'linli_db_password';
CREATE DATABASE meetings OWNER meetings;
REVOKE ALL ON DATABASE meetings FROM PUBLIC;

CREATE ROLE activities LOGIN PASSWORD :'linli_db_password';
CREATE DATABASE activities OWNER activities;
REVOKE ALL ON DATABASE activities FROM PUBLIC;

CREATE ROLE notifications LOGIN PASSWORD :'linli_db_password';
CREATE DATABASE notifications OWNER notifications;
REVOKE ALL ON DATABASE notifications FROM PUBLIC;
