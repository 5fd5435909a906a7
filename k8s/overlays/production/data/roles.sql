-- Run once by CloudNativePG when it creates the database (bootstrap.initdb.postInitApplicationSQLRefs),
-- as the superuser, in database "sqi". Each service gets a role that OWNS exactly its own schema and
-- is granted nothing else: a service's role cannot read another service's schema.
-- The roles are created here without LOGIN; the Cluster's managed roles (spec.managed.roles) then
-- give them LOGIN and the password of their Secret, and keep them so.
-- sqi_owner (the database owner, CloudNativePG's generated Secret sqi-pg-app) is a member of every
-- service role: the migration Job connects as sqi_owner and runs each service's migrations under
-- SET ROLE <that service's role>, so every table is owned by its service's role.
REVOKE ALL ON DATABASE sqi FROM PUBLIC;
-- Nobody creates objects in "public" (PostgreSQL >= 15's default, made explicit). USAGE stays: the
-- Pooler's auth query calls public.user_search(), which CloudNativePG creates there and grants
-- to cnpg_pooler_pgbouncer alone; SQI keeps nothing in "public".
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE sqi TO sqi_owner;

CREATE ROLE sqi_gateway NOLOGIN;
CREATE SCHEMA gateway AUTHORIZATION sqi_gateway;
GRANT CONNECT ON DATABASE sqi TO sqi_gateway;

CREATE ROLE sqi_ingest NOLOGIN;
CREATE SCHEMA ingest AUTHORIZATION sqi_ingest;
GRANT CONNECT ON DATABASE sqi TO sqi_ingest;

CREATE ROLE sqi_scoring NOLOGIN;
CREATE SCHEMA scoring AUTHORIZATION sqi_scoring;
GRANT CONNECT ON DATABASE sqi TO sqi_scoring;

CREATE ROLE sqi_feedback NOLOGIN;
CREATE SCHEMA feedback AUTHORIZATION sqi_feedback;
GRANT CONNECT ON DATABASE sqi TO sqi_feedback;

CREATE ROLE sqi_reporting NOLOGIN;
CREATE SCHEMA reporting AUTHORIZATION sqi_reporting;
GRANT CONNECT ON DATABASE sqi TO sqi_reporting;

GRANT sqi_gateway, sqi_ingest, sqi_scoring, sqi_feedback, sqi_reporting TO sqi_owner;
