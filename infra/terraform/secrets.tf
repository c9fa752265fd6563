# The PostgreSQL connection URL of the platform database, read by export_attempts at
# every run (DATABASE_SECRET_ARN). Terraform creates the secret, never its value: set it
# once with
#   aws secretsmanager put-secret-value --secret-id <database_secret_arn output> \
#     --secret-string "$DATABASE_URL"
# where DATABASE_URL is a libpq URL (postgres:// then user, password, host, port 5432
# and database) ending in ?sslmode=verify-full&sslrootcert=/var/task/infra/certs/rds-global-bundle.pem
# (sslmode and sslrootcert as libpq reads them; the RDS CA bundle is shipped in the zip
# by `make lambda` when it is in infra/certs/; see infra/README.md).

resource "aws_secretsmanager_secret" "database_url" {
  #checkov:skip=CKV2_AWS_57:Rotation of the database credentials belongs to the database's owner (a rotation function for that database); the export reads the current value at every run.
  name                    = "${var.name_prefix}/database-url"
  description             = "PostgreSQL URL (SecretString) of the platform database read by export_attempts"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}
