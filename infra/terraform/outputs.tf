output "lake_bucket" {
  description = "Name of the lake bucket."
  value       = aws_s3_bucket.lake.bucket
}

output "lake_uri" {
  description = "LAKE_URI of the functions (also usable by `irtlake --lake` with AWS credentials)."
  value       = local.lake_uri
}

output "log_bucket" {
  description = "Name of the bucket holding the lake's S3 access logs."
  value       = aws_s3_bucket.logs.bucket
}

output "state_machine_arn" {
  description = "ARN of the pipeline state machine."
  value       = aws_sfn_state_machine.pipeline.arn
}

output "function_names" {
  description = "Lambda function name of each stage."
  value       = { for s, f in aws_lambda_function.stage : s => f.function_name }
}

output "function_arns" {
  description = "Lambda function ARN of each stage."
  value       = { for s, f in aws_lambda_function.stage : s => f.arn }
}

output "database_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the PostgreSQL URL (set its value outside Terraform)."
  value       = aws_secretsmanager_secret.database_url.arn
}

output "kms_key_arn" {
  description = "ARN of the customer-managed key of the lake, logs, environment and secret."
  value       = aws_kms_key.main.arn
}

output "alarm_topic_arn" {
  description = "SNS topic of the pipeline alarms."
  value       = aws_sns_topic.alarms.arn
}

output "schedule_name" {
  description = "Name of the daily EventBridge Scheduler schedule."
  value       = aws_scheduler_schedule.daily.name
}

output "glue_database_name" {
  description = "Glue Data Catalog database of the lake's tables (Athena: --query-execution-context Database=...)."
  value       = aws_glue_catalog_database.lake.name
}

output "athena_workgroup" {
  description = "Athena workgroup for queries of the lake (results encrypted with the lake's key)."
  value       = aws_athena_workgroup.lake.name
}

output "athena_results_location" {
  description = "Where the workgroup writes query results."
  value       = local.athena_results_location
}
