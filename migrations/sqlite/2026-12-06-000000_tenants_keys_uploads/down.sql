DROP TABLE uploads;
DROP TABLE api_keys;
DROP INDEX jobs_by_tenant_status;
DROP INDEX jobs_by_tenant;
ALTER TABLE jobs DROP COLUMN tenant;
