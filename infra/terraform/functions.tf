# One Lambda function per stage, all from the same artifact: the irtlake binary is the
# `bootstrap` of a provided.al2023 function and serves the stage named by STAGE.

# The zip (48 MB measured for a DataFusion binary, next to the 50 MB limit of a direct
# upload) goes through S3, where the limit is 250 MB unzipped. Stored outside the lake
# root, so no function can read it.
resource "aws_s3_object" "lambda_zip" {
  bucket      = aws_s3_bucket.lake.id
  key         = local.deploy_key
  source      = var.lambda_zip
  source_hash = filemd5(var.lambda_zip)
  kms_key_id  = aws_kms_key.main.arn

  depends_on = [aws_s3_bucket_versioning.lake, aws_s3_bucket_server_side_encryption_configuration.lake]
}

resource "aws_lambda_function" "stage" {
  #checkov:skip=CKV_AWS_116:Step Functions invokes every function synchronously (lambda:invoke, RequestResponse); a DLQ only receives failed asynchronous invocations. Failures are retried and caught by the state machine.
  #checkov:skip=CKV_AWS_117:The functions reach only AWS APIs (S3, KMS, Secrets Manager, Logs); a VPC would need NAT or endpoints for no gain. export_attempts joins a VPC when export_vpc_subnet_ids is set (the database's network).
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile and a signed artifact published by CI; the zip is built by `make lambda` and uploaded by Terraform with its SHA-256 pinned (source_code_hash).
  for_each = toset(local.stages)

  function_name = local.function_names[each.key]
  description   = "irtlake stage ${each.key}"
  role          = aws_iam_role.stage[each.key].arn

  s3_bucket         = aws_s3_object.lambda_zip.bucket
  s3_key            = aws_s3_object.lambda_zip.key
  s3_object_version = aws_s3_object.lambda_zip.version_id
  source_code_hash  = filebase64sha256(var.lambda_zip)

  runtime       = "provided.al2023"
  architectures = ["arm64"]
  handler       = "bootstrap"

  memory_size                    = local.stage_settings[each.key].memory_mb
  timeout                        = local.stage_settings[each.key].timeout_s
  reserved_concurrent_executions = local.stage_settings[each.key].reserved_concurrency

  # Environment encrypted with the customer-managed key. No secret in it: export_attempts
  # gets the secret's ARN and reads the value from Secrets Manager at start.
  kms_key_arn = aws_kms_key.main.arn
  environment {
    variables = merge(
      local.common_environment,
      { STAGE = each.key, IRTLAKE_QUERY_MEMORY_MB = tostring(local.query_memory_mb[each.key]) },
      each.key == "export_attempts" ? { DATABASE_SECRET_ARN = aws_secretsmanager_secret.database_url.arn } : {},
      each.key == "reports" ? { REPORT_URL_EXPIRY_SECS = tostring(var.report_url_expiry_seconds) } : {}
    )
  }

  # /tmp, where DataFusion spills sorts and aggregations beyond IRTLAKE_QUERY_MEMORY_MB.
  ephemeral_storage {
    size = local.stage_settings[each.key].ephemeral_mb
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.stage[each.key].name
  }

  dynamic "vpc_config" {
    for_each = each.key == "export_attempts" && length(var.export_vpc_subnet_ids) > 0 ? [1] : []
    content {
      subnet_ids         = var.export_vpc_subnet_ids
      security_group_ids = var.export_vpc_security_group_ids
    }
  }

  depends_on = [
    aws_iam_role_policy.stage,
    aws_cloudwatch_log_group.stage,
  ]
}
